/**
 * Builds small qcow2 images with planted content, and reads images back, for tests that need a
 * real libguestfs guest (harden, audit). Each build or read is ONE appliance launch (~15 s under
 * TCG), so build one image per scenario and assert many things on it.
 */
import {execa} from 'execa'
import {mkdtemp, readFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join, posix} from 'node:path'
import {GuestfishSession, type GuestStat} from '../../src/harden/guestfish.js'
import {insecureAuthorizedKeys, VAGRANT_INSECURE_KEYS} from '../../src/harden/insecure-keys.js'
import {mountLinuxRoot} from '../../src/harden/mount-root.js'

/**
 * libguestfs as the tests run it: the direct backend (an unprivileged user has no libvirt
 * session), and TCG, since nested KVM does not work on the test machines. For this process and
 * for the shien commands a test starts.
 */
export const GUESTFS_ENV = {LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg'}
process.env.LIBGUESTFS_BACKEND ??= GUESTFS_ENV.LIBGUESTFS_BACKEND
process.env.LIBGUESTFS_BACKEND_SETTINGS ??= GUESTFS_ENV.LIBGUESTFS_BACKEND_SETTINGS

/** One thing to plant in the guest, in order; parent directories are created as needed (root, 0755). */
export type GuestEntry =
  | {type: 'dir'; path: string; mode?: number; uid?: number; gid?: number}
  | {type: 'file'; path: string; content: string | Buffer; mode?: number; uid?: number; gid?: number}
  | {type: 'symlink'; path: string; target: string}
  | {type: 'hardlink'; path: string; target: string}

/** A qcow2 with one MBR partition holding an ext4 filesystem made of `entries`. */
export async function buildGuestImage(image: string, entries: GuestEntry[], opts: {sizeMiB?: number} = {}): Promise<void> {
  const g = await GuestfishSession.start()
  try {
    await g.call('disk-create', image, 'qcow2', `${opts.sizeMiB ?? 64}M`)
    await g.addDrive(image, {format: 'qcow2', readonly: false})
    await g.launch()
    await g.call('part-disk', '/dev/sda', 'mbr')
    await g.call('mkfs', 'ext4', '/dev/sda1')
    await g.call('mount', '/dev/sda1', '/')
    for (const entry of entries) await plant(g, entry)
    await g.close()
  } catch (error) {
    await g.kill()
    throw error
  }
}

/** A filesystem besides the root: another partition, or another logical volume with `lvm`. */
export interface ExtraVolume {
  entries: GuestEntry[]
  sizeMiB: number
  /** The filesystem's label (for `LABEL=` in fstab). */
  label?: string
}

/** One image of `buildGuestImages`. */
export interface GuestImageSpec {
  image: string
  entries: GuestEntry[]
  sizeMiB?: number
  /** The root (and `volumes`) as logical volumes of this volume group (the name must be unique). */
  lvm?: string
  /** More filesystems, each after the root: partition 2, 3... or logical volumes `vol1`, `vol2`... */
  volumes?: ExtraVolume[]
}

/**
 * Several qcow2 images, each an MBR disk with ext4 filesystems made of their entries (or an LVM
 * volume group on one partition), in ONE appliance launch (one drive per image): for tests that
 * need many guests.
 */
export async function buildGuestImages(specs: GuestImageSpec[]): Promise<void> {
  const g = await GuestfishSession.start()
  try {
    for (const spec of specs) {
      await g.call('disk-create', spec.image, 'qcow2', `${spec.sizeMiB ?? 64}M`)
      await g.addDrive(spec.image, {format: 'qcow2', readonly: false})
    }
    await g.launch()
    // Devices are listed in the order the drives were added (sda, sdb, ...).
    const devices = await g.lines('list-devices')
    for (const [i, spec] of specs.entries()) {
      const filesystems = await layOut(g, devices[i], spec)
      for (const fs of filesystems) {
        await g.call('mkfs', 'ext4', fs.device)
        if (fs.label) await g.call('set-label', fs.device, fs.label)
        await g.call('mount', fs.device, '/')
        for (const entry of fs.entries) await plant(g, entry)
        await g.call('umount-all')
      }
    }
    await g.close()
  } catch (error) {
    await g.kill()
    throw error
  }
}

/** Partitions (or logical volumes) for the root then each extra volume; returns their devices, root first. */
async function layOut(g: GuestfishSession, device: string, spec: GuestImageSpec): Promise<{device: string; entries: GuestEntry[]; label?: string}[]> {
  const size = spec.sizeMiB ?? 64
  const volumes = spec.volumes ?? []
  const extraMiB = volumes.reduce((sum, v) => sum + v.sizeMiB, 0)
  if (spec.lvm) {
    await g.call('part-disk', device, 'mbr')
    await g.call('pvcreate', `${device}1`)
    await g.call('vgcreate', spec.lvm, `${device}1`)
    // The volume group loses a few MiB to LVM's metadata and the partition table's alignment.
    await g.call('lvcreate', 'root', spec.lvm, String(size - 16 - extraMiB))
    for (const [k, v] of volumes.entries()) await g.call('lvcreate', `vol${k + 1}`, spec.lvm, String(v.sizeMiB))
    return [{device: `/dev/${spec.lvm}/root`, entries: spec.entries}, ...volumes.map((v, k) => ({...v, device: `/dev/${spec.lvm}/vol${k + 1}`}))]
  }
  if (volumes.length === 0) {
    await g.call('part-disk', device, 'mbr')
    return [{device: `${device}1`, entries: spec.entries}]
  }
  // 512-byte sectors; the first MiB holds the partition table.
  await g.call('part-init', device, 'mbr')
  let start = 2048
  const sizes = [size - 2 - extraMiB, ...volumes.map((v) => v.sizeMiB)]
  for (const [k, mib] of sizes.entries()) {
    const end = k === sizes.length - 1 ? -1 : start + mib * 2048 - 1
    await g.call('part-add', device, 'p', String(start), String(end))
    start = end + 1
  }
  return [{device: `${device}1`, entries: spec.entries}, ...volumes.map((v, k) => ({...v, device: `${device}${k + 2}`}))]
}

async function plant(g: GuestfishSession, entry: GuestEntry): Promise<void> {
  await g.call('mkdir-p', posix.dirname(entry.path))
  if (entry.type === 'symlink') return void (await g.call('ln-s', entry.target, entry.path))
  if (entry.type === 'hardlink') return void (await g.call('ln', entry.target, entry.path))
  if (entry.type === 'dir') await g.call('mkdir-p', entry.path)
  else await g.writeFile(entry.path, entry.content)
  await g.call('chown', String(entry.uid ?? 0), String(entry.gid ?? 0), entry.path)
  await g.call('chmod', `0${(entry.mode ?? (entry.type === 'dir' ? 0o755 : 0o644)).toString(8)}`, entry.path)
}

/** What libguestfs inspection needs to call a filesystem a Linux root (Debian 12 here). */
export function minimalLinuxRoot(): GuestEntry[] {
  return [
    {type: 'dir', path: '/bin'},
    {type: 'dir', path: '/usr/bin'},
    {type: 'file', path: '/etc/os-release', content: 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n'},
    {type: 'file', path: '/etc/debian_version', content: '12.5\n'},
    {type: 'file', path: '/etc/fstab', content: '/dev/sda1 / ext4 errors=remount-ro 0 1\n'},
    {type: 'file', path: '/etc/hostname', content: 'bookworm\n'},
  ]
}

/** Stat and bytes of a guest file (content only for regular files). */
export interface GuestFile {
  stat: GuestStat
  content?: Buffer
}

export interface GuestSnapshot {
  distro?: string
  files: Record<string, GuestFile | undefined>
  dirs: Record<string, string[] | undefined>
}

/** Reads files (lstat, not followed) and directory listings from an image, read-only, in one launch. */
export async function readGuestImage(image: string, query: {files?: string[]; dirs?: string[]}): Promise<GuestSnapshot> {
  const g = await GuestfishSession.start()
  try {
    await g.addDrive(image, {format: 'qcow2', readonly: true})
    await g.launch()
    const mount = await mountLinuxRoot(g, {readonly: true})
    const snapshot: GuestSnapshot = {distro: mount.mounted ? mount.distro : undefined, files: {}, dirs: {}}
    for (const path of query.files ?? []) {
      const stat = await g.stat(path)
      snapshot.files[path] = stat && {stat, content: stat.kind === 'file' ? await g.readFile(path) : undefined}
    }
    for (const path of query.dirs ?? []) {
      snapshot.dirs[path] = (await g.bool('is-dir', path)) ? await g.lines('ls', path) : undefined
    }
    await g.close()
    return snapshot
  } catch (error) {
    await g.kill()
    throw error
  }
}

/** A sha512-crypt hash as /etc/shadow holds it (`openssl passwd -6`). */
export async function sha512Crypt(password: string): Promise<string> {
  return (await execa('openssl', ['passwd', '-6', '-stdin'], {input: password})).stdout.trim()
}

/** A fresh key pair in a new private directory; returns the paths and the public line. */
export async function makeKeyPair(type: 'ed25519' | 'ecdsa' | 'rsa', comment: string, name = `id_${type}`) {
  const dir = await mkdtemp(join(tmpdir(), 'shien-test-key-'))
  const privatePath = join(dir, name)
  await execa('ssh-keygen', ['-q', '-N', '', '-t', type, '-C', comment, '-f', privatePath])
  return {dir, privatePath, publicPath: `${privatePath}.pub`, publicLine: (await readFile(`${privatePath}.pub`, 'utf8')).trim()}
}

/** `ssh-keygen -l` of a public key file: "SHA256:...", computed by OpenSSH itself. */
export async function sshFingerprint(publicPath: string): Promise<string> {
  return (await execa('ssh-keygen', ['-l', '-E', 'sha256', '-f', publicPath])).stdout.split(/\s+/)[1]
}

/** What `vagrantBox` planted, for assertions. */
export interface VagrantBoxFixture {
  entries: GuestEntry[]
  /** Host key public files as planted (host paths), for fingerprints. */
  hostPublicKeys: string[]
  /** A key that is neither insecure nor the student's, authorized for vagrant with options. */
  unrelatedKey: string
  machineId: string
}

/**
 * A Vagrant base box as published: both insecure keys for vagrant (one with options, one with a
 * CRLF line end), the RSA one for root, the password "vagrant" for both, host keys and a
 * machine-id every clone would share, and a drop-in turning SSH password login on.
 */
export async function vagrantBox(opts: {extraPasswd?: string[]} = {}): Promise<VagrantBoxFixture> {
  const [rsa, ed25519] = VAGRANT_INSECURE_KEYS
  const unrelated = await makeKeyPair('ed25519', 'ci@example.org')
  const unrelatedKey = `no-pty,from="10.0.0.0/8" ${unrelated.publicLine}`
  const hash = await sha512Crypt('vagrant')
  const hostKeys = await Promise.all((['ed25519', 'rsa'] as const).map(async (t) => {
    const pair = await makeKeyPair(t, 'root@bookworm', `ssh_host_${t}_key`)
    return {...pair, privateBytes: await readFile(pair.privatePath)}
  }))
  const machineId = 'a3f1c2d4e5b60718293a4b5c6d7e8f90'
  const entries: GuestEntry[] = [
    ...minimalLinuxRoot(),
    {type: 'file', path: '/etc/passwd', content: [...PASSWD, ...(opts.extraPasswd ?? [])].map((l) => `${l}\n`).join('')},
    {type: 'file', path: '/etc/group', content: 'root:x:0:\nshadow:x:42:\nvagrant:x:1000:\n'},
    {type: 'file', path: '/etc/shadow', mode: 0o640, gid: 42, content:
      `root:${hash}:19700:0:99999:7:::\nsshd:*:19700:0:99999:7:::\nvagrant:${hash}:19700:0:99999:7:::\n`},
    {type: 'dir', path: '/root/.ssh', mode: 0o700},
    {type: 'file', path: '/root/.ssh/authorized_keys', mode: 0o600, content: `${rsa.type} ${rsa.blob} vagrant\n`},
    {type: 'dir', path: '/home/vagrant', mode: 0o755, uid: 1000, gid: 1000},
    {type: 'dir', path: '/home/vagrant/.ssh', mode: 0o700, uid: 1000, gid: 1000},
    {type: 'file', path: '/home/vagrant/.ssh/authorized_keys', mode: 0o600, uid: 1000, gid: 1000, content:
      `# keys\n\nno-pty,command="/bin/true" ${rsa.type} ${rsa.blob} vagrant insecure public key\n${unrelatedKey}\n${ed25519.type} ${ed25519.blob}\r\n`},
    {type: 'file', path: '/home/vagrant/.ssh/authorized_keys2', mode: 0o600, uid: 1000, gid: 1000, content: insecureAuthorizedKeys()},
    {type: 'file', path: '/etc/ssh/sshd_config', content: SSHD_CONFIG},
    {type: 'file', path: '/etc/ssh/sshd_config.d/50-cloud-init.conf', content: 'PasswordAuthentication yes\n'},
    ...hostKeys.flatMap((k): GuestEntry[] => [
      {type: 'file', path: `/etc/ssh/${posix.basename(k.privatePath)}`, mode: 0o600, content: k.privateBytes},
      {type: 'file', path: `/etc/ssh/${posix.basename(k.publicPath)}`, content: `${k.publicLine}\n`},
    ]),
    {type: 'file', path: '/etc/machine-id', mode: 0o444, content: `${machineId}\n`},
    {type: 'file', path: '/var/lib/dbus/machine-id', content: `${machineId}\n`},
  ]
  return {entries, hostPublicKeys: hostKeys.map((k) => k.publicPath), unrelatedKey, machineId}
}

const PASSWD = [
  'root:x:0:0:root:/root:/bin/bash',
  'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
  'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
  'sshd:x:100:65534::/run/sshd:/usr/sbin/nologin',
  'vagrant:x:1000:1000:vagrant,,,:/home/vagrant:/bin/bash',
]

const SSHD_CONFIG = [
  'Include /etc/ssh/sshd_config.d/*.conf',
  '',
  'KbdInteractiveAuthentication no',
  'UsePAM yes',
  'X11Forwarding yes',
  'PrintMotd no',
  'AcceptEnv LANG LC_*',
  'Subsystem sftp /usr/lib/openssh/sftp-server',
  'UseDNS no',
  '',
].join('\n')
