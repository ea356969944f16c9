/**
 * Finds a guest's one Linux root and mounts it with the filesystems its fstab names.
 *
 * libguestfs inspection (`inspect-os`) takes 7 to 9 s under TCG, more than half a bare appliance
 * launch: it runs helper programs (blkid, lvm, mount) for every filesystem, then parses each
 * root's release files and fstab. The layouts Vagrant boxes use (partitions or LVM logical volumes holding
 * ext2/3/4, xfs or vfat) are told apart here in about a second, with inspection's own tests of what
 * a Linux root is: each filesystem is mounted read-only and classified as inspection classifies it
 * (`daemon/inspect_fs.ml` of libguestfs 1.48). Anything this file does not fully know goes back to
 * inspection, so a layout is never guessed nor half-mounted: another filesystem type (btrfs, LUKS,
 * RAID, ntfs...), a filesystem that looks like another OS's root, several Linux roots (inspection
 * then names them, and the caller refuses), an fstab entry that cannot be resolved or a mountpoint
 * that is not a plain directory of the root.
 *
 * Nothing is mounted read-write before the one root is known, so a refused image is left as it
 * was. Probes run with guestfish's `-` prefix (an error is not fatal), as inspection ignores a
 * filesystem it cannot mount.
 */
import {posix} from 'node:path'

import {distroOf, neededEntries, parseFstab, resolveSpec, type GuestFs} from './fstab.js'
import type {GuestfishSession} from './guestfish.js'

/** The root device and how it was found, or why nothing was mounted. */
export type MountResult =
  | {mounted: true; root: string; distro: string; via: 'probe' | 'inspection'}
  | {mounted: false; reason: string}

const PROBED = new Set(['ext2', 'ext3', 'ext4', 'xfs', 'vfat'])
/** No root on these: no signature at all (''), swap, or the LVM volumes found through `lvs`. */
const SKIPPED = new Set(['', 'swap', 'LVM2_member'])
const FSTAB_MAX = 64 * 1024

type Role = 'linux' | 'other-os' | 'none'

export async function mountLinuxRoot(g: GuestfishSession, opts: {readonly: boolean}): Promise<MountResult> {
  const probe = await probeFilesystems(g)
  if (probe === undefined) return mountByInspection(g, opts)
  const roots = probe.roles.filter((r) => r.role === 'linux')
  if (roots.length === 0) return {mounted: false, reason: 'no operating system was found'}
  if (roots.length === 1) {
    const mounted = await mountProbed(g, probe, roots[0].fs.device, opts)
    if (mounted) return mounted
  }
  await g.call('umount-all')
  return mountByInspection(g, opts)
}

interface Probe {
  filesystems: GuestFs[]
  roles: {fs: GuestFs; role: Role}[]
  /** The device still mounted read-only on / after probing (the last one, when it is a root). */
  leftMounted?: string
}

/** Every filesystem's role, or undefined when one of them needs inspection. */
async function probeFilesystems(g: GuestfishSession): Promise<Probe | undefined> {
  const partitions = await g.lines('list-partitions')
  const devices = partitions.length > 0 ? partitions : await g.lines('list-devices')
  // A device blkid cannot read (an LV of an incomplete volume group) answers nothing at all, not
  // even the empty line of "no signature": it is left to inspection.
  const typed = async (list: string[]) => Promise.all(list.map(async (device) => {
    const answer = await g.tryCall('vfs-type', device)
    return {device, type: answer === '' ? 'unreadable' : answer.trim()}
  }))
  const found = await typed(devices)
  if (found.some((f) => f.type === 'LVM2_member')) found.push(...(await typed(await g.lines('lvs'))))
  if (found.some((f) => !PROBED.has(f.type) && !SKIPPED.has(f.type))) return undefined
  const filesystems = found.filter((f) => PROBED.has(f.type)).map((f) => ({...f, uuid: '', label: ''}))
  const roles: Probe['roles'] = []
  let leftMounted: string | undefined
  for (const [i, fs] of filesystems.entries()) {
    await g.tryCall('mount-ro', fs.device, '/')
    const role = await roleOf(g)
    if (role === 'other-os') {
      await g.call('umount-all')
      return undefined
    }
    roles.push({fs, role})
    if (role === 'linux' && i === filesystems.length - 1) leftMounted = fs.device
    else await g.call('umount-all')
  }
  return {filesystems, roles, leftMounted}
}

const GRUB_FILES = ['/grub/menu.lst', '/grub/grub.conf', '/grub2/grub.cfg']
/** Files inspection takes for a BSD, Hurd, Minix, CoreOS, FreeDOS or MS-DOS root. */
const OTHER_OS_FILES = ['/etc/freebsd-update.conf', '/netbsd', '/bsd', '/service/vm', '/hurd/console', '/etc/coreos/update.conf', '/FDOS/FREEDOS.BSS', '/DOS/COMMAND.COM']
const LINUX_PATHS = ['/etc', '/bin', '/etc/fstab', '/etc/hosts']

/**
 * What inspection would call the filesystem mounted on /, in its order: a Grub /boot is nothing,
 * a BSD, Hurd, Minix, CoreOS, Windows or DOS root is left to inspection, then its Linux root test
 * (lstat, as its `Is` module does). On a filesystem that did not mount every lookup fails: nothing.
 */
async function roleOf(g: GuestfishSession): Promise<Role> {
  const paths = [...GRUB_FILES, ...OTHER_OS_FILES, '/windows/system32', ...LINUX_PATHS]
  const stats = new Map(await Promise.all(paths.map(async (path) => [path, (await g.stat(path))?.kind] as const)))
  if (GRUB_FILES.some((path) => stats.get(path) === 'file')) return 'none'
  if (OTHER_OS_FILES.some((path) => stats.get(path) === 'file') || stats.get('/windows/system32') === 'dir') return 'other-os'
  const bin = stats.get('/bin') === 'dir' || (stats.get('/bin') === 'symlink' && (await g.call('readlink', '/bin')).trim() === 'usr/bin')
  return stats.get('/etc') === 'dir' && bin && (stats.get('/etc/fstab') === 'file' || stats.get('/etc/hosts') === 'file') ? 'linux' : 'none'
}

/** Mounts the one root found by probing and its fstab's filesystems; undefined to leave it to inspection. */
async function mountProbed(g: GuestfishSession, probe: Probe, root: string, opts: {readonly: boolean}): Promise<MountResult | undefined> {
  if (probe.leftMounted !== root) await g.call(opts.readonly ? 'mount-ro' : 'mount', root, '/')
  else if (!opts.readonly) await g.call('mount-options', 'remount,rw', root, '/')
  const fstab = (await g.stat('/etc/fstab'))?.kind === 'file' ? await g.callBytes('pread', '/etc/fstab', String(FSTAB_MAX + 1), '0') : Buffer.alloc(0)
  if (fstab.length > FSTAB_MAX) return undefined
  const entries = neededEntries(parseFstab(fstab.toString('utf8')))
  if (entries.some((e) => /^(UUID|LABEL)=|^\/dev\/disk\/by-(uuid|label)\//.test(e.spec))) await readIds(g, probe.filesystems)
  const mounts = entries.map((e) => ({mountpoint: e.mountpoint.replace(/(.)\/$/, '$1'), device: resolveSpec(e.spec, probe.filesystems)}))
  // Parents first: a mountpoint's parent is always a shorter path.
  mounts.sort((a, b) => a.mountpoint.length - b.mountpoint.length)
  for (const {mountpoint, device} of mounts) {
    if (device === undefined || posix.normalize(mountpoint) !== mountpoint) return undefined
    // mount(8) would follow a symlink in the path outside the guest's root: only a real directory will do.
    if ((await g.stat(mountpoint))?.kind !== 'dir' || (await g.call('realpath', mountpoint)).trim() !== mountpoint) return undefined
    await g.call(opts.readonly ? 'mount-ro' : 'mount', device, mountpoint)
  }
  return {mounted: true, root, distro: await readDistro(g), via: 'probe'}
}

/** UUID and LABEL of each filesystem, from one blkid run each. */
async function readIds(g: GuestfishSession, filesystems: GuestFs[]): Promise<void> {
  await Promise.all(filesystems.map(async (fs) => {
    // blkid -p refuses a device with two signatures; then the spec is not resolved and inspection decides.
    const lines = (await g.tryCall('blkid', fs.device)).split('\n').filter((l) => l.includes(': '))
    const tags = new Map(lines.map((line) => [line.slice(0, line.indexOf(': ')), line.slice(line.indexOf(': ') + 2)]))
    fs.uuid = tags.get('UUID') ?? ''
    fs.label = tags.get('LABEL') ?? ''
  }))
}

async function readDistro(g: GuestfishSession): Promise<string> {
  for (const path of ['/etc/os-release', '/usr/lib/os-release']) {
    // Followed (Debian's is a symlink), and only a regular file: opening a FIFO would hang the daemon.
    if ((await g.statFollowed(path))?.kind !== 'file') continue
    const distro = distroOf((await g.callBytes('pread', path, String(FSTAB_MAX), '0')).toString('utf8'))
    if (distro !== 'unknown') return distro
  }
  return 'unknown'
}

/** libguestfs inspection: every filesystem probed; mounts what the one root's fstab names. */
async function mountByInspection(g: GuestfishSession, opts: {readonly: boolean}): Promise<MountResult> {
  const roots = await g.lines('inspect-os')
  if (roots.length !== 1) {
    return {mounted: false, reason: roots.length === 0 ? 'no operating system was found' : `${roots.length} operating systems were found (multi-boot is not supported)`}
  }
  const root = roots[0]
  const type = (await g.call('inspect-get-type', root)).trim()
  if (type !== 'linux') return {mounted: false, reason: `the operating system is ${type}, not Linux`}
  const mounts = (await g.lines('inspect-get-mountpoints', root)).map((line) => {
    const at = line.lastIndexOf(': ')
    return {mountpoint: line.slice(0, at), device: line.slice(at + 2)}
  })
  mounts.sort((a, b) => a.mountpoint.length - b.mountpoint.length)
  for (const {mountpoint, device} of mounts) await g.call(opts.readonly ? 'mount-ro' : 'mount', device, mountpoint)
  const distro = (await g.call('inspect-get-distro', root)).trim()
  return {mounted: true, root, distro, via: 'inspection'}
}
