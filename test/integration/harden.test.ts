/**
 * hardenImage on real qcow2 images with real libguestfs. Launches (~15 s each under TCG): build 1,
 * harden 2 (the second proves idempotence), read back 1, blank disk 1 (+3 s of an aborted one).
 */
import {createHash} from 'node:crypto'
import {mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {hardenImage, type HardenReport} from '../../src/harden/harden-image.js'
import {applianceLaunches} from '../../src/harden/guestfish.js'
import {VAGRANT_INSECURE_KEYS} from '../../src/harden/insecure-keys.js'
import {
  buildGuestImage, makeKeyPair, readGuestImage, sshFingerprint, vagrantBox,
  type GuestSnapshot, type VagrantBoxFixture,
} from '../support/guest-image.js'

const AK = '/home/vagrant/.ssh/authorized_keys'
const HOST_KEY_FILES = ['ed25519', 'ecdsa', 'rsa'].flatMap((t) => [`ssh_host_${t}_key`, `ssh_host_${t}_key.pub`])
const READ_BACK = [
  AK, `${AK}2`, '/home/vagrant/.ssh', '/root/.ssh/authorized_keys', '/etc/shadow', '/etc/passwd',
  '/home/alice/.ssh/authorized_keys', '/home/alice/.ssh/authorized_keys2',
  '/etc/machine-id', '/var/lib/dbus/machine-id', '/etc/ssh/sshd_config', '/etc/ssh/sshd_config.d/50-cloud-init.conf',
  ...HOST_KEY_FILES.map((f) => `/etc/ssh/${f}`),
]

describe('hardenImage on a Vagrant-like qcow2', () => {
  let work: string
  let image: string
  let box: VagrantBoxFixture
  let student: Awaited<ReturnType<typeof makeKeyPair>>
  let first: HardenReport
  let second: HardenReport
  let launchesPerRun: number[]
  let guest: GuestSnapshot

  const text = (path: string) => guest.files[path]?.content?.toString('utf8')
  const planted = (path: string) => {
    const entry = box.entries.find((e) => e.path === path)
    return entry?.type === 'file' ? entry.content.toString() : undefined
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'shien-harden-it-'))
    image = join(work, '01.qcow2')
    box = await vagrantBox({extraPasswd: ['alice:x:1001:1001::/home/alice:/bin/bash']})
    await buildGuestImage(image, [
      ...box.entries,
      // Traps: sshd would follow these to /etc/shadow; harden must not edit (or copy) it through them.
      {type: 'dir', path: '/home/alice/.ssh', mode: 0o700, uid: 1001, gid: 1001},
      {type: 'symlink', path: '/home/alice/.ssh/authorized_keys', target: '/etc/shadow'},
      {type: 'hardlink', path: '/home/alice/.ssh/authorized_keys2', target: '/etc/shadow'},
    ])
    student = await makeKeyPair('ed25519', 'e195701@laptop')
    launchesPerRun = []
    for (const run of [1, 2]) {
      const before = applianceLaunches()
      const report = await hardenImage(image, {publicKey: student.publicLine})
      launchesPerRun.push(applianceLaunches() - before)
      if (run === 1) first = report
      else second = report
    }
    guest = await readGuestImage(image, {files: READ_BACK, dirs: ['/etc/ssh']})
  }, 600_000)

  afterAll(async () => {
    if (work) await rm(work, {recursive: true, force: true})
    if (student) await rm(student.dir, {recursive: true, force: true})
  })

  it('uses one appliance launch per run and reports it', () => {
    expect(launchesPerRun).toEqual([1, 1])
    expect(first.applianceLaunches).toBe(1)
    expect(first.distro).toBe('debian')
    expect(first.durationMs).toBeGreaterThan(1000)
    console.info(`harden under TCG: ${first.durationMs} ms, then ${second.durationMs} ms`)
  })

  it('removes both insecure keys from every account, keeping the other lines', () => {
    expect(first.insecureKeysRemoved).toEqual(expect.arrayContaining([
      {file: AK, count: 2}, {file: `${AK}2`, count: 2}, {file: '/root/.ssh/authorized_keys', count: 1},
    ]))
    expect(first.insecureKeysRemoved).toHaveLength(3)
    expect(text(AK)).toBe(`# keys\n\n${box.unrelatedKey}\n${student.publicLine}\n`)
    expect(text(`${AK}2`)).toBe('')
    expect(text('/root/.ssh/authorized_keys')).toBe('')
    for (const path of [AK, `${AK}2`, '/root/.ssh/authorized_keys']) {
      for (const key of VAGRANT_INSECURE_KEYS) expect(text(path)).not.toContain(key.blob.slice(0, 40))
    }
  })

  it('installs the student key once, in a 0700 .ssh and a 0600 file owned by vagrant', () => {
    expect(first.keyInstalled).toEqual({file: AK, added: true})
    expect(second.keyInstalled).toEqual({file: AK, added: false})
    expect(guest.files[AK]?.stat).toMatchObject({kind: 'file', mode: 0o600, uid: 1000, gid: 1000})
    expect(guest.files['/home/vagrant/.ssh']?.stat).toMatchObject({kind: 'dir', mode: 0o700, uid: 1000, gid: 1000})
  })

  it('removes symlinked and hard-linked key files without touching what they point at', () => {
    expect(first.unsafeLinksRemoved.sort()).toEqual(['/home/alice/.ssh/authorized_keys', '/home/alice/.ssh/authorized_keys2'])
    expect(guest.files['/home/alice/.ssh/authorized_keys']).toBeUndefined()
    expect(guest.files['/home/alice/.ssh/authorized_keys2']).toBeUndefined()
    expect(guest.files['/etc/passwd']?.content?.toString()).toBe(planted('/etc/passwd'))
  })

  it('sets the vagrant and root password fields to * and keeps every other byte, mode and owner of shadow', () => {
    const original = planted('/etc/shadow')!
    const hash = /^root:([^:]+):/.exec(original)![1]
    expect(hash).toMatch(/^\$6\$/)
    expect(text('/etc/shadow')).toBe(original.replace(`root:${hash}:`, 'root:*:').replace(`vagrant:${hash}:`, 'vagrant:*:'))
    expect(guest.files['/etc/shadow']?.stat).toMatchObject({kind: 'file', mode: 0o640, uid: 0, gid: 42, nlink: 1})
    expect(first.accountsLocked.sort()).toEqual(['root', 'vagrant'])
  })

  it('replaces the host keys with new root-owned ones and reports both fingerprints', async () => {
    const keyDir = await mkdtemp(join(work, 'keys-'))
    expect(guest.dirs['/etc/ssh']?.filter((n) => n.startsWith('ssh_host_')).sort()).toEqual([...HOST_KEY_FILES].sort())
    const fresh: string[] = []
    for (const name of HOST_KEY_FILES) {
      const file = guest.files[`/etc/ssh/${name}`]!
      expect(file.stat).toMatchObject({kind: 'file', uid: 0, gid: 0, mode: name.endsWith('.pub') ? 0o644 : 0o600})
      await writeFile(join(keyDir, name), file.content!, {mode: 0o600})
      if (name.endsWith('.pub')) fresh.push(await sshFingerprint(join(keyDir, name)))
      // The private key must be whole: its public half is the .pub next to it.
      else expect((await execa('ssh-keygen', ['-y', '-f', join(keyDir, name)])).stdout.split(' ')[1]).toBe(text(`/etc/ssh/${name}.pub`)?.split(' ')[1])
    }
    const planted = await Promise.all(box.hostPublicKeys.map(sshFingerprint))
    const prints = (keys: {fingerprint: string}[]) => keys.map((k) => k.fingerprint).sort()
    // The guest holds the second run's keys; each run reports the keys it found and the ones it made.
    expect(prints(second.hostKeys.new)).toEqual(fresh.sort())
    expect(prints(second.hostKeys.old)).toEqual(prints(first.hostKeys.new))
    expect(prints(first.hostKeys.old)).toEqual(planted.sort())
    expect(first.hostKeys.new.map((k) => k.type).sort()).toEqual(['ecdsa-sha2-nistp256', 'ssh-ed25519', 'ssh-rsa'])
    expect(prints(first.hostKeys.new).some((f) => planted.includes(f))).toBe(false)
  })

  it('empties /etc/machine-id (keeping it) and removes the dbus copy', () => {
    expect(guest.files['/etc/machine-id']?.stat).toMatchObject({kind: 'file', size: 0, mode: 0o444})
    expect(guest.files['/var/lib/dbus/machine-id']).toBeUndefined()
    expect(first.machineId).toEqual({emptied: true, dbusRemoved: true})
  })

  it('turns SSH password login off ahead of the drop-ins, once, as OpenSSH itself reads it', async () => {
    const config = text('/etc/ssh/sshd_config')!
    expect(config.endsWith(planted('/etc/ssh/sshd_config')!)).toBe(true)
    expect(config.match(/# BEGIN shien/g)).toHaveLength(1)
    expect([first.sshd.changed, second.sshd.changed]).toEqual([true, false])
    // Let the real sshd parse the guest's config: the Include points at a copy of the guest's drop-ins.
    const dir = await mkdtemp(join(work, 'sshd-'))
    await writeFile(join(dir, '50-cloud-init.conf'), guest.files['/etc/ssh/sshd_config.d/50-cloud-init.conf']!.content!)
    await writeFile(join(dir, 'sshd_config'), config.replace('/etc/ssh/sshd_config.d/', `${dir}/`))
    await writeFile(join(dir, 'host_key'), guest.files['/etc/ssh/ssh_host_ed25519_key']!.content!, {mode: 0o600})
    const {stdout} = await execa('/usr/sbin/sshd', ['-T', '-f', join(dir, 'sshd_config'), '-h', join(dir, 'host_key')])
    expect(stdout).toMatch(/^passwordauthentication no$/m)
    expect(stdout).toMatch(/^kbdinteractiveauthentication no$/m)
    expect(stdout).toMatch(/^permitrootlogin without-password$/m)
    expect(stdout).toMatch(/^authorizedkeysfile \.ssh\/authorized_keys \.ssh\/authorized_keys2$/m)
  })
})

describe('hardenImage on a disk without an operating system', () => {
  let work: string
  let image: string
  let student: Awaited<ReturnType<typeof makeKeyPair>>
  const digest = async () => createHash('sha256').update(await readFile(image)).digest('hex')

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'shien-harden-blank-'))
    image = join(work, 'blank.qcow2')
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', image, '64M'])
    student = await makeKeyPair('ed25519', 'student')
  })
  afterAll(async () => {
    await rm(work, {recursive: true, force: true})
    await rm(student.dir, {recursive: true, force: true})
  })

  it('refuses with HARDEN_NO_OS and leaves the image byte for byte as it was', async () => {
    const before = await digest()
    const error = await hardenImage(image, {publicKey: student.publicLine}).catch((e: unknown) => e)
    expect(error).toMatchObject({code: 'HARDEN_NO_OS', exitCode: 3})
    // qemu is gone (and its image lock released) by the time hardenImage returns: a retry can start now.
    expect(await processesUsing(image)).toEqual([])
    expect(await digest()).toBe(before)
  }, 120_000)

  it('stops on abort while the appliance boots, leaving no qemu and no temporary files behind', async () => {
    const ours = async () => (await readdir(tmpdir())).filter((n) => /^shien-(guestfish|hostkeys)-/.test(n)).length
    const tempBefore = await ours()
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 3000)
    const error = await hardenImage(image, {publicKey: student.publicLine, signal: controller.signal}).catch((e: unknown) => e)
    expect(error).toMatchObject({code: 'HARDEN_CANCELLED', exitCode: 130})
    // libguestfs' recovery process looks for guestfish once a second and then kills qemu (measured:
    // gone 1.0 to 1.25 s after the cancel); a busy machine stretches that.
    expect(await gone(() => processesUsing(image), 20_000)).toEqual([])
    expect(await ours()).toBe(tempBefore)
  }, 60_000)
})

/** What `list` answers once it is empty, or at the deadline. */
async function gone(list: () => Promise<string[]>, withinMs: number): Promise<string[]> {
  const deadline = performance.now() + withinMs
  for (;;) {
    const left = await list()
    if (left.length === 0 || performance.now() > deadline) return left
    await new Promise((r) => setTimeout(r, 250))
  }
}

/** Pids whose command line names `path` (qemu holds the image it serves). */
async function processesUsing(path: string): Promise<string[]> {
  const pids = (await readdir('/proc')).filter((n) => /^\d+$/.test(n))
  const hits: string[] = []
  for (const pid of pids) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
    if (cmdline.includes(path)) hits.push(pid)
  }
  return hits
}
