import {randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import {chmod, chown, mkdtemp, readFile, readlink, rm, stat, writeFile} from 'node:fs/promises'
import {connect} from 'node:net'
import {hostname} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {renderDomainXml, loadTemplate} from '../../src/virsh/template.js'
import {startSecondLibvirtd, type SecondLibvirtd} from '../support/second-libvirtd.js'
import {closedPort} from '../support/system.js'

// Two blades on one machine: the system libvirtd (qemu:///system) and a second libvirtd in mount
// and UTS namespaces of its own, both seeing one storage folder (the shared GFS2 volume's
// stand-in). A tiny VM is live-migrated between them and moved while stopped. The host's
// libvirtd is only used, never reconfigured; only this test's domain is touched on it.
const HOST = 'qemu:///system'
// The storage folder is on the machine's local file system, which libvirt does not know as
// shared (it does know GFS2 as a cluster file system), hence --unsafe. The destination's
// hostname (blade2, the host's) is what libvirt would give qemu to connect to: 127.0.0.1 is
// given instead, as a blade's migration address would be.
const LIVE = ['migrate', '--live', '--persistent', '--undefinesource', '--unsafe', '--migrateuri', 'tcp://127.0.0.1']

/**
 * A boot sector that prints a line on the first serial port, writes "hien" at 0x7e04, then
 * halts until each interrupt and counts them in the word at 0x7e00 (the BIOS timer alone wakes it
 * about 18 times a second). A halted TCG vCPU costs next to nothing. Source (GNU as, .code16):
 *   cli; xor %ax,%ax; mov %ax,%ds; mov %ax,%ss; mov $0x7c00,%sp
 *   movw $0,0x7e00; movl $0x6e656968,0x7e04; mov $msg,%si
 *   1: lodsb; test %al,%al; jz 2f; mov %al,%ah; mov $0x3fd,%dx
 *   3: in %dx,%al; test $0x20,%al; jz 3b; mov $0x3f8,%dx; mov %ah,%al; out %al,%dx; jmp 1b
 *   2: sti; 4: hlt; incw 0x7e00; jmp 4b
 *   msg: .asciz "shien tick counter at 0x7e00\r\n"
 */
const TICK_SECTOR =
  'fa31c08ed88ed0bc007cc706007e000066c706047e6869656ebe3b7cac84c0741288c4bafd03eca82074fbbaf80388e0eeebe9fbf4ff06007eebf9736869656e207469636b20636f756e746572206174203078376530300d0a00'
const MAGIC = 0x6e656968

type Virsh = (...args: string[]) => ReturnType<typeof execa>
const virshOn = (uri: string): Virsh => (...args) => execa('virsh', ['-c', uri, ...args], {reject: false})

/** The guest's interrupt counter and marker, read from its memory through qemu's monitor. */
async function guestMemory(virsh: Virsh, name: string): Promise<{counter: number; magic: number}> {
  const r = await virsh('qemu-monitor-command', '--hmp', name, 'xp /2wx 0x7e00')
  const m = /7e00:\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)/.exec(String(r.stdout))
  if (!m) throw new Error(`cannot read the guest's memory: ${r.stderr}${r.stdout}`)
  return {counter: Number.parseInt(m[1], 16) & 0xffff, magic: Number.parseInt(m[2], 16)}
}

/**
 * Waits until the guest has counted past `above`: it runs (SeaBIOS takes a moment under TCG
 * before the boot sector writes its marker), and it is the same guest, not a new boot.
 */
async function counting(virsh: Virsh, name: string, above = 0): Promise<number> {
  for (let i = 0; ; i++) {
    const seen = await guestMemory(virsh, name)
    if (seen.magic === MAGIC && seen.counter > above) return seen.counter
    if (i > 100) throw new Error(`the guest does not count (marker ${seen.magic.toString(16)}, counter ${seen.counter}, above ${above})`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

describe('live migration between two libvirtds on one machine', () => {
  let blade2: SecondLibvirtd
  let shared: string
  const name = `shien-mig-${randomBytes(4).toString('hex')}`
  const disk = () => join(shared, `${name}.qcow2`)

  function domainXml(uuid?: string): string {
    return `<domain type='qemu'>
  <name>${name}</name>${uuid ? `\n  <uuid>${uuid}</uuid>` : ''}
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <!-- relabel='no' as in shien's template: neither blade chowns the shared image on start or stop. -->
      <source file='${disk()}'><seclabel model='dac' relabel='no'/></source>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='pty'><target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>`
  }

  /** The domain's state on a daemon, or undefined when it has no such domain. */
  async function stateOn(uri: string): Promise<string | undefined> {
    const r = await virshOn(uri)('domstate', name)
    return r.exitCode === 0 ? String(r.stdout).trim() : undefined
  }

  async function persistentOn(uri: string): Promise<boolean> {
    return /^Persistent:\s+yes$/m.test(String((await virshOn(uri)('dominfo', name)).stdout))
  }

  /** The mount namespace of the qemu that runs the domain on a daemon whose run folder is `runDir`. */
  async function qemuMountNamespace(runDir: string): Promise<string> {
    const pid = (await readFile(join(runDir, 'qemu', `${name}.pid`), 'utf8')).trim()
    return readlink(`/proc/${pid}/ns/mnt`)
  }

  /** libvirt's own account of the last migration, from the destination. */
  async function completedJob(uri: string): Promise<{elapsedMs: number; downtimeMs: number}> {
    const {stdout} = await virshOn(uri)('domjobinfo', '--completed', name)
    const field = (label: string) => Number(new RegExp(`^${label}:\\s+(\\d+)\\s+ms`, 'm').exec(String(stdout))?.[1])
    return {elapsedMs: field('Time elapsed'), downtimeMs: field('Total downtime')}
  }

  async function removeEverywhere(): Promise<void> {
    for (const uri of [HOST, blade2?.uri].filter(Boolean) as string[]) {
      await virshOn(uri)('destroy', name)
      await virshOn(uri)('undefine', name)
    }
  }

  beforeAll(async () => {
    blade2 = await startSecondLibvirtd()
    // libvirt probes qemu's capabilities once per daemon, here rather than in the first test's time.
    await blade2.virsh('capabilities')
    shared = await mkdtemp('/tmp/shien-shared-')
    await chmod(shared, 0o755)
    const raw = join(shared, `${name}.raw`)
    const sector = Buffer.alloc(1 << 20)
    Buffer.from(TICK_SECTOR, 'hex').copy(sector)
    sector.writeUInt16LE(0xaa55, 510)
    await writeFile(raw, sector)
    await execa('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, disk()])
    await rm(raw)
    // The image belongs to the user both blades run qemu as.
    const qemuUid = Number((await execa('id', ['-u', 'libvirt-qemu'])).stdout)
    const qemuGid = Number((await execa('id', ['-g', 'libvirt-qemu'])).stdout)
    await chown(disk(), qemuUid, qemuGid)
    const xml = join(shared, `${name}.xml`)
    await writeFile(xml, domainXml())
    expect((await virshOn(HOST)('define', xml)).exitCode).toBe(0)
    const started = await virshOn(HOST)('start', name)
    expect(started.exitCode, String(started.stderr)).toBe(0)
    await counting(virshOn(HOST), name)
  })

  afterAll(async () => {
    await removeEverywhere()
    await blade2?.stop()
    if (shared) await rm(shared, {recursive: true, force: true})
  })

  it('is another host to libvirt: its own hostname, host UUID, state folders and domains', async () => {
    expect(String((await blade2.virsh('hostname')).stdout).trim()).toBe(blade2.name)
    expect(hostname()).not.toBe(blade2.name)
    const uuidOf = async (uri: string) => /<host>\s*<uuid>([0-9a-f-]+)<\/uuid>/.exec(String((await virshOn(uri)('capabilities')).stdout))?.[1]
    const hostUuid = await uuidOf(HOST)
    expect(await uuidOf(blade2.uri)).toBe(blade2.hostUuid)
    expect(hostUuid).toBeTruthy()
    expect(hostUuid).not.toBe(blade2.hostUuid)
    expect(await stateOn(HOST)).toBe('running')
    expect(await stateOn(blade2.uri)).toBeUndefined()
  })

  it('live-migrates the running VM to blade2: it keeps running there and is gone from the source', async () => {
    const before = await counting(virshOn(HOST), name)
    const started = Date.now()
    const moved = await virshOn(HOST)(...LIVE, name, blade2.uri)
    const wallMs = Date.now() - started
    expect(moved.exitCode, `${moved.stderr}\n${await blade2.logTail()}`).toBe(0)

    expect(await stateOn(blade2.uri)).toBe('running')
    expect(await persistentOn(blade2.uri)).toBe(true)
    expect(await stateOn(HOST)).toBeUndefined()
    // blade2's qemu runs in blade2's namespace, not the host's.
    expect(await qemuMountNamespace(join(blade2.dir, 'run'))).not.toBe(await readlink('/proc/self/ns/mnt'))
    // The same guest, not a new boot: its counter went on from where it was, and goes on.
    const after = await counting(blade2.virsh, name, before)
    await counting(blade2.virsh, name, after)

    const job = await completedJob(blade2.uri)
    expect(job.downtimeMs).toBeGreaterThanOrEqual(0)
    expect(job.downtimeMs).toBeLessThan(job.elapsedMs)
    console.log(
      `live migration host -> ${blade2.name}: virsh migrate took ${wallMs} ms; libvirt: ${job.elapsedMs} ms elapsed, ` +
        `${job.downtimeMs} ms downtime; guest counter ${before} -> ${after}`,
    )
  })

  it('live-migrates it back with --p2p: blade2 libvirtd itself connects to the host and drives the migration', async () => {
    const before = await counting(blade2.virsh, name)
    const started = Date.now()
    const moved = await blade2.virsh(...LIVE, '--p2p', name, blade2.hostUri)
    const wallMs = Date.now() - started
    expect(moved.exitCode, `${moved.stderr}\n${await blade2.logTail()}`).toBe(0)

    expect(await stateOn(HOST)).toBe('running')
    expect(await persistentOn(HOST)).toBe(true)
    expect(await stateOn(blade2.uri)).toBeUndefined()
    const after = await counting(virshOn(HOST), name, before)
    const job = await completedJob(HOST)
    console.log(
      `live migration ${blade2.name} -> host (--p2p): virsh migrate took ${wallMs} ms; libvirt: ${job.elapsedMs} ms elapsed, ` +
        `${job.downtimeMs} ms downtime; guest counter ${before} -> ${after}`,
    )
  })

  it('a destination that refuses (another domain of that name) leaves the VM running where it was', async () => {
    const other = join(shared, `${name}-other.xml`)
    await writeFile(other, domainXml('00000000-0000-4000-8000-00000000beef'))
    expect((await blade2.virsh('define', other)).exitCode).toBe(0)
    try {
      const before = await counting(virshOn(HOST), name)
      const refused = await virshOn(HOST)(...LIVE, name, blade2.uri)
      expect(refused.exitCode).not.toBe(0)
      expect(String(refused.stderr)).toMatch(/already exists with uuid/)
      expect(await stateOn(HOST)).toBe('running')
      expect(await persistentOn(HOST)).toBe(true)
      await counting(virshOn(HOST), name, before)
      // blade2's own domain of that name is as it was: defined, not running.
      expect(await stateOn(blade2.uri)).toBe('shut off')
      expect(String((await blade2.virsh('domuuid', name)).stdout).trim()).toBe('00000000-0000-4000-8000-00000000beef')
    } finally {
      await blade2.virsh('undefine', name)
    }
  })

  it('refuses without --unsafe (a local file system is not shared storage to libvirt) and without an address qemu can reach', async () => {
    const base = ['migrate', '--live', '--persistent', '--undefinesource']
    const refusals: Array<[string[], RegExp]> = [
      [[...base, '--migrateuri', 'tcp://127.0.0.1'], /Migration without shared storage is unsafe/],
      // blade2 started its qemu to receive, then the source could not resolve "blade2": libvirt
      // stops blade2's qemu and the VM goes on at the source.
      [[...base, '--unsafe'], new RegExp(`Unable to resolve address '${blade2.name}'`)],
    ]
    for (const [argv, reason] of refusals) {
      const before = await counting(virshOn(HOST), name)
      const refused = await virshOn(HOST)(...argv, name, blade2.uri)
      expect(refused.exitCode).not.toBe(0)
      expect(String(refused.stderr)).toMatch(reason)
      expect(await stateOn(HOST)).toBe('running')
      expect(await stateOn(blade2.uri)).toBeUndefined()
      await counting(virshOn(HOST), name, before)
    }
  })

  it('a copy of the running VM defined on blade2 cannot start: qemu holds the shared image locked', async () => {
    const copy = join(shared, `${name}-copy.xml`)
    await writeFile(copy, String((await virshOn(HOST)('dumpxml', '--inactive', name)).stdout))
    expect((await blade2.virsh('define', copy)).exitCode).toBe(0)
    try {
      const before = await counting(virshOn(HOST), name)
      const refused = await blade2.virsh('start', name)
      expect(refused.exitCode).not.toBe(0)
      expect(String(refused.stderr)).toMatch(/Failed to get "write" lock/)
      expect(await stateOn(blade2.uri)).toBe('shut off')
      await counting(virshOn(HOST), name, before)
    } finally {
      await blade2.virsh('undefine', name)
    }
  })

  it('moves a stopped VM by defining its XML on the other daemon, and back', async () => {
    for (const [from, to] of [[HOST, blade2.uri], [blade2.uri, HOST]]) {
      expect((await virshOn(from)('destroy', name)).exitCode).toBe(0)
      const xml = join(shared, `${name}-moved.xml`)
      await writeFile(xml, String((await virshOn(from)('dumpxml', '--inactive', name)).stdout))
      expect((await virshOn(from)('undefine', name)).exitCode).toBe(0)
      expect((await virshOn(to)('define', xml)).exitCode).toBe(0)
      const started = await virshOn(to)('start', name)
      expect(started.exitCode, String(started.stderr)).toBe(0)
      expect(await stateOn(from)).toBeUndefined()
      expect(await stateOn(to)).toBe('running')
      await counting(virshOn(to), name)
    }
  })

  it("refuses a destination that reports the source's host UUID: libvirt's same-host check, whatever the hostname", async () => {
    const uuid = /<host>\s*<uuid>([0-9a-f-]+)<\/uuid>/.exec(String((await virshOn(HOST)('capabilities')).stdout))![1]
    const twin = await startSecondLibvirtd({name: 'blade2-twin', migrationPorts: {from: 49600, to: 49663}, hostUuid: uuid})
    try {
      const before = await counting(virshOn(HOST), name)
      const refused = await virshOn(HOST)(...LIVE, name, twin.uri)
      expect(refused.exitCode).not.toBe(0)
      expect(String(refused.stderr)).toContain(`Attempt to migrate guest to the same host ${uuid}`)
      expect(await stateOn(HOST)).toBe('running')
      expect((await twin.virsh('domstate', name)).exitCode).not.toBe(0)
      await counting(virshOn(HOST), name, before)
    } finally {
      await twin.stop()
    }
  }, 120_000)

  it('a migration to a blade that is down, or to no blade at all, leaves the VM running where it was', async () => {
    const uri = blade2.uri
    const pids = await Promise.all(['libvirtd', 'virtlogd'].map(async (d) => (await readFile(join(blade2.dir, `${d}.pid`), 'utf8')).trim()))
    await blade2.stop()
    // Nothing of blade2 is left: its daemons are gone, and with them its namespaces and folders.
    for (const pid of pids) expect(existsSync(`/proc/${pid}`)).toBe(false)
    expect(existsSync(blade2.dir)).toBe(false)
    for (const destination of [uri, 'qemu+unix:///system?socket=/nonexistent/libvirt-sock']) {
      const before = await counting(virshOn(HOST), name)
      const refused = await virshOn(HOST)(...LIVE, name, destination)
      expect(refused.exitCode).not.toBe(0)
      expect(String(refused.stderr)).toMatch(/Failed to connect socket/)
      expect(await stateOn(HOST)).toBe('running')
      expect(await persistentOn(HOST)).toBe(true)
      await counting(virshOn(HOST), name, before)
    }
  })
})

// shien's own domains: rendered from templates/normal.xml, the VM runs as its owner's uid (a
// static DAC label) and forwards an SSH port on the blade's listen address. Between two
// namespaced blades, whose libvirt state folders this test may change (the host's it never does).
describe("shien's normal template between two blades: the owner's uid and the SSH forward move too", () => {
  // A student's uid and gid; qemu runs as them, no account is needed for that.
  const OWNER = {uid: 64123, gid: 64123}
  const name = `shien-mig-${randomBytes(4).toString('hex')}`
  const address = {blade2: '127.0.0.2', blade3: '127.0.0.3'}
  let blade2: SecondLibvirtd
  let blade3: SecondLibvirtd
  let shared: string
  let sshPort: number
  const disk = () => join(shared, 'users', 'student', 'images', '01.qcow2')

  async function xmlFor(listenAddress: string): Promise<string> {
    const template = await loadTemplate('normal', {admin: join(shared, 'no-templates'), package: join(process.cwd(), 'templates')})
    const xml = renderDomainXml(template, {
      name, uuid: '6d1e4a2c-0b7e-4b7a-9d55-1f2a3b4c5d6e', domainType: 'qemu', memoryMiB: 32, vcpus: 1,
      diskPath: disk(), backingChain: [], sshPort, listenAddress, owner: OWNER, arch: 'x86_64',
    })
    const path = join(shared, `${name}-${listenAddress}.xml`)
    await writeFile(path, xml)
    return path
  }

  /** As Debian ships it: libvirt-qemu's, 0750; ie-virsh admits each owner with a traverse-only ACL entry. */
  async function qemuStateAsShipped(blade: SecondLibvirtd): Promise<string> {
    const dir = join(blade.dir, 'lib', 'qemu')
    await execa('chown', ['libvirt-qemu:libvirt-qemu', dir])
    await chmod(dir, 0o750)
    return dir
  }
  const admit = (dir: string) => execa('setfacl', ['-m', `u:${OWNER.uid}:--x`, dir])

  const accepts = (host: string, port: number) =>
    new Promise<boolean>((resolve) => {
      const socket = connect({host, port})
      socket.once('connect', () => (socket.destroy(), resolve(true)))
      socket.once('error', () => resolve(false))
    })

  async function qemuUid(blade: SecondLibvirtd): Promise<number> {
    const pid = (await readFile(join(blade.dir, 'run', 'qemu', `${name}.pid`), 'utf8')).trim()
    return (await stat(`/proc/${pid}`)).uid
  }

  beforeAll(async () => {
    blade2 = await startSecondLibvirtd({name: 'blade2', migrationPorts: {from: 49400, to: 49463}})
    blade3 = await startSecondLibvirtd({name: 'blade3', migrationPorts: {from: 49500, to: 49563}})
    await Promise.all([blade2.virsh('capabilities'), blade3.virsh('capabilities')])
    shared = await mkdtemp('/tmp/shien-shared-')
    await chmod(shared, 0o755)
    await execa('mkdir', ['-p', '-m', '0755', join(shared, 'users', 'student')])
    await execa('mkdir', ['-m', '0700', join(shared, 'users', 'student', 'images')])
    await chown(join(shared, 'users', 'student', 'images'), OWNER.uid, OWNER.gid)
    const raw = `${disk()}.raw`
    const sector = Buffer.alloc(1 << 20)
    Buffer.from(TICK_SECTOR, 'hex').copy(sector)
    sector.writeUInt16LE(0xaa55, 510)
    await writeFile(raw, sector)
    await execa('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, disk()])
    await rm(raw)
    await chown(disk(), OWNER.uid, OWNER.gid)
    sshPort = await closedPort()
    await admit(await qemuStateAsShipped(blade2))
    await qemuStateAsShipped(blade3)
    expect((await blade2.virsh('define', await xmlFor(address.blade2))).exitCode).toBe(0)
    const started = await blade2.virsh('start', name)
    expect(started.exitCode, `${started.stderr}\n${await blade2.logTail()}`).toBe(0)
    await counting(blade2.virsh, name)
  })

  afterAll(async () => {
    await blade2?.stop()
    await blade3?.stop()
    if (shared) await rm(shared, {recursive: true, force: true})
  })

  it('runs on blade2 as its owner, its SSH forward on blade2 address', async () => {
    expect(await qemuUid(blade2)).toBe(OWNER.uid)
    expect(await accepts(address.blade2, sshPort)).toBe(true)
  })

  it('refuses to move it to a blade that has not admitted its owner to the qemu state folder, and the VM stays', async () => {
    const before = await counting(blade2.virsh, name)
    const refused = await blade2.virsh(...LIVE, '--xml', await xmlFor(address.blade3), name, blade3.uri)
    expect(refused.exitCode).not.toBe(0)
    expect(String(refused.stderr)).toMatch(/\/var\/lib\/libvirt\/qemu\/domain-[^ ]*: Permission denied/)
    expect(String((await blade2.virsh('domstate', name)).stdout).trim()).toBe('running')
    expect((await blade3.virsh('domstate', name)).exitCode).not.toBe(0)
    await counting(blade2.virsh, name, before)
  })

  it('refuses to move it with its XML unchanged: on one machine the forward address and port are blade2 qemu', async () => {
    await admit(join(blade3.dir, 'lib', 'qemu'))
    const before = await counting(blade2.virsh, name)
    const refused = await blade2.virsh(...LIVE, name, blade3.uri)
    expect(refused.exitCode).not.toBe(0)
    expect(String(refused.stderr)).toMatch(/Could not set up host forwarding rule/)
    expect(String((await blade2.virsh('domstate', name)).stdout).trim()).toBe('running')
    expect((await blade3.virsh('domstate', name)).exitCode).not.toBe(0)
    await counting(blade2.virsh, name, before)
  })

  it('with the owner admitted and the forward on blade3 address (--xml and --persistent-xml), it moves live', async () => {
    await admit(join(blade3.dir, 'lib', 'qemu'))
    const before = await counting(blade2.virsh, name)
    const xml = await xmlFor(address.blade3)
    const moved = await blade2.virsh(...LIVE, '--xml', xml, '--persistent-xml', xml, name, blade3.uri)
    expect(moved.exitCode, `${moved.stderr}\n${await blade3.logTail()}`).toBe(0)
    expect((await blade2.virsh('domstate', name)).exitCode).not.toBe(0)
    expect(String((await blade3.virsh('domstate', name)).stdout).trim()).toBe('running')
    await counting(blade3.virsh, name, before)
    expect(await qemuUid(blade3)).toBe(OWNER.uid)
    expect(await accepts(address.blade3, sshPort)).toBe(true)
    expect(await accepts(address.blade2, sshPort)).toBe(false)
    // The definition blade3 keeps (its next start) has blade3's address too.
    expect(String((await blade3.virsh('dumpxml', '--inactive', name)).stdout)).toContain(`hostfwd=tcp:${address.blade3}:${sshPort}-:22`)
  })
})
