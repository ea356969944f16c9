import {chown, lstat, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest'

import {factsFromAnswer} from '../../src/cluster/facts.js'
import {placeVm} from '../../src/cluster/placement.js'
import {clusterPaths} from '../../src/config/storage-layout.js'
import {openDrainedBlades} from '../../src/privileged/drained-blades.js'
import {ExitCode} from '../../src/errors.js'
import {main} from '../../src/virsh/main.js'
import {startSecondLibvirtd, type SecondLibvirtd} from '../support/second-libvirtd.js'
import {ensureLibvirtd, ensureUser, virsh} from '../support/system.js'
import {emptyVirshState, makeVirshStorage} from '../support/virsh.js'

/**
 * ie-virsh on two blades sharing one storage root (docs/cluster.md): blade cwa is the system
 * libvirtd, blade cwb a second libvirtd of its own (test/support/second-libvirtd.ts); each has its
 * own config naming itself as `cluster.self`, on the same storage. Real accounts, real qemu-img.
 */
const HOST = 'qemu:///system'
const ACCOUNTS = ['shien-cw1', 'shien-cw2'] as const
const PORTS = {from: 42630, to: 42639}

describe('ie-virsh with a cluster section, two blades on one storage', () => {
  let root: string
  let cwb: SecondLibvirtd
  let paths: ReturnType<typeof clusterPaths>
  const uid: Record<string, number> = {}
  const imagesOf = (account: string) => join(root, 'users', account, 'images')
  const image = (account: string, slot: string) => join(imagesOf(account), `${slot}.qcow2`)
  const definedOnA = async (name: string) => (await virsh('domstate', name)).exitCode === 0
  const definedOnB = async (name: string) => (await cwb.virsh('domstate', name)).exitCode === 0
  const recordFiles = () => readdir(paths.slots).catch(() => [] as string[])
  const xmlFiles = () => readdir(paths.domains).catch(() => [] as string[])

  let blades: Array<{name: string; ssh: string; migrationUri: string; native: Array<'x86_64'>; keepFreeMiB: number}>

  async function run(blade: 'a' | 'b' | 'single', account: string, ...argv: string[]) {
    let out = ''
    let err = ''
    const code = await main([...argv, '--json'], {
      configPath: join(root, 'etc', `${blade}.json`),
      env: {SUDO_UID: String(uid[account])},
      stdout: (t) => (out += t),
      stderr: (t) => (err += t),
    })
    return {code, body: out ? JSON.parse(out) : undefined, out, err}
  }

  async function makeImage(account: string, slot: string) {
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', image(account, slot), '64M'])
    await chown(image(account, slot), uid[account], uid[account])
  }

  beforeAll(async () => {
    await ensureLibvirtd()
    for (const account of ACCOUNTS) uid[account] = await ensureUser(account)
    root = await makeVirshStorage('shien-cwire-', Object.fromEntries(ACCOUNTS.map((a) => [a, uid[a]])))
    paths = clusterPaths(root)
    await mkdir(join(root, 'etc', 'templates'), {recursive: true})
    // A template libvirt refuses at define: its emulator does not exist.
    const normal = await readFile(join(import.meta.dirname, '../../templates/normal.xml'), 'utf8')
    await writeFile(join(root, 'etc', 'templates', 'cwbroken.xml'), normal.replace('<devices>', '<devices>\n    <emulator>/nonexistent/qemu-system-x86_64</emulator>'), {mode: 0o644})
    cwb = await startSecondLibvirtd({name: 'cwb', migrationPorts: {from: 49520, to: 49529}})
    blades = [
      {name: 'cwa', ssh: '127.0.0.1:2201', migrationUri: 'qemu+unix:///system?socket=/run/libvirt/libvirt-sock', native: ['x86_64'], keepFreeMiB: 0},
      {name: 'cwb', ssh: '127.0.0.1:2202', migrationUri: cwb.uri, native: ['x86_64'], keepFreeMiB: 0},
    ]
    const base = {
      storageRoot: root,
      domainType: 'qemu',
      templatesDir: join(root, 'etc', 'templates'),
      sshPortPool: PORTS,
      listenAddress: '127.0.0.1',
      // Other tests' VMs may run on the system libvirtd too: the bound leaves them room.
      bladeMemoryMiB: 1_000_000,
      arch: {native: ['x86_64'], emulated: []},
      limits: {default: {vms: 4, vcpus: 1, memoryMiB: 128, templates: ['cwbroken']}},
    }
    const write = (file: string, config: object) => writeFile(join(root, 'etc', file), JSON.stringify({...base, ...config}), {mode: 0o644})
    await write('a.json', {libvirtUri: HOST, cluster: {blades, self: 'cwa'}})
    await write('b.json', {libvirtUri: cwb.uri, cluster: {blades, self: 'cwb'}})
    await write('single.json', {libvirtUri: HOST})
  }, 120_000)

  const cleanSlate = async () => {
    await emptyVirshState(root, ACCOUNTS)
    for (const account of ACCOUNTS) for (const slot of ['01', '02']) await cwb.virsh('undefine', `${account}-${slot}`)
    await rm(paths.dir, {recursive: true, force: true})
  }
  afterEach(cleanSlate)

  afterAll(async () => {
    if (root) await cleanSlate()
    await cwb?.stop()
    if (root) await rm(root, {recursive: true, force: true})
  }, 60_000)

  it('a slot defined on cwa is refused on cwb with SLOT_ELSEWHERE, nothing defined there; undefine on cwa lets cwb have it', async () => {
    await makeImage('shien-cw1', '01')
    expect(await run('a', 'shien-cw1', 'define', '01')).toMatchObject({code: 0})
    const record = JSON.parse(await readFile(paths.record('shien-cw1', '01'), 'utf8'))
    expect(record).toMatchObject({account: 'shien-cw1', slot: '01', blade: 'cwa'})
    // The XML kept beside the record is the one libvirt was given, root's alone.
    const kept = await readFile(paths.domainXml('shien-cw1', '01'), 'utf8')
    expect(kept).toContain('<name>shien-cw1-01</name>')
    expect((await virsh('dumpxml', '--inactive', 'shien-cw1-01')).stdout).toContain(/<uuid>([^<]+)<\/uuid>/.exec(kept)![1])
    expect((await stat(paths.domains)).mode & 0o777).toBe(0o700)
    expect((await stat(paths.domainXml('shien-cw1', '01'))).mode & 0o777).toBe(0o600)

    const refused = await run('b', 'shien-cw1', 'define', '01')
    expect(refused.body.error).toMatchObject({code: 'SLOT_ELSEWHERE', exitCode: ExitCode.refused})
    expect(refused.body.error.message).toMatch(/shien-cw1-01 is defined on cwa .* cannot be defined on cwb/)
    expect(await definedOnB('shien-cw1-01')).toBe(false)
    expect(JSON.parse(await readFile(paths.record('shien-cw1', '01'), 'utf8'))).toEqual(record)
    expect(await readdir(join(root, 'ports', 'ssh'))).toHaveLength(1)

    expect(await run('a', 'shien-cw1', 'undefine', '01')).toMatchObject({code: 0})
    expect(await recordFiles()).toEqual([])
    expect(await xmlFiles()).toEqual([])
    expect(await run('b', 'shien-cw1', 'define', '01')).toMatchObject({code: 0})
    expect(await definedOnB('shien-cw1-01')).toBe(true)
    expect(JSON.parse(await readFile(paths.record('shien-cw1', '01'), 'utf8'))).toMatchObject({blade: 'cwb'})
    expect(await run('b', 'shien-cw1', 'undefine', '01')).toMatchObject({code: 0})
    expect(await recordFiles()).toEqual([])
  }, 120_000)

  it('two blades defining one slot at once: exactly one has it, the other is told which', async () => {
    await makeImage('shien-cw1', '01')
    const [a, b] = await Promise.all([run('a', 'shien-cw1', 'define', '01'), run('b', 'shien-cw1', 'define', '01')])
    expect([a.code, b.code].sort()).toEqual([0, ExitCode.refused])
    const [winner, loser] = a.code === 0 ? ['cwa', b] : ['cwb', a]
    // Whichever came second saw the slot taken: on its own blade by the record, never by libvirt.
    expect(loser.body.error.code).toBe('SLOT_ELSEWHERE')
    expect(loser.body.error.message).toContain(`defined on ${winner}`)
    expect([await definedOnA('shien-cw1-01'), await definedOnB('shien-cw1-01')]).toEqual([winner === 'cwa', winner === 'cwb'])
    expect(JSON.parse(await readFile(paths.record('shien-cw1', '01'), 'utf8'))).toMatchObject({blade: winner})
    expect(await readdir(join(root, 'ports', 'ssh'))).toHaveLength(1)
    expect(await run(winner === 'cwa' ? 'a' : 'b', 'shien-cw1', 'undefine', '01')).toMatchObject({code: 0})
  }, 120_000)

  it('a define libvirt refuses leaves no record, no XML and no port', async () => {
    await makeImage('shien-cw1', '01')
    const r = await run('a', 'shien-cw1', 'define', '01', '--template', 'cwbroken')
    expect(r.body.error).toMatchObject({code: 'VIRSH_FAILED'})
    expect(r.body.error.message).toMatch(/nonexistent/)
    expect(await definedOnA('shien-cw1-01')).toBe(false)
    expect(await recordFiles()).toEqual([])
    expect(await xmlFiles()).toEqual([])
    expect(await readdir(join(root, 'ports', 'ssh')).catch(() => [])).toEqual([])
  })

  it('refuses a symlink planted at the domains XML folder: nothing claimed, defined or written through it', async () => {
    await makeImage('shien-cw1', '01')
    const planted = await mkdtemp('/tmp/shien-cwire-planted-')
    try {
      await mkdir(paths.dir, {mode: 0o755})
      await symlink(planted, paths.domains)
      const r = await run('a', 'shien-cw1', 'define', '01')
      expect(r.body.error).toMatchObject({code: 'CLUSTER_DIR_UNSAFE'})
      expect(r.body.error.message).toContain(paths.domains)
      expect(await definedOnA('shien-cw1-01')).toBe(false)
      expect(await recordFiles()).toEqual([])
      expect(await readdir(planted)).toEqual([])
      expect((await lstat(paths.domains)).isSymbolicLink()).toBe(true)
    } finally {
      await rm(planted, {recursive: true, force: true})
    }
  })

  it('claims a slot defined before the cluster section when start first sees it', async () => {
    await makeImage('shien-cw1', '02')
    expect(await run('single', 'shien-cw1', 'define', '02')).toMatchObject({code: 0})
    await expect(lstat(paths.dir)).rejects.toThrow(/ENOENT/)
    expect(await run('a', 'shien-cw1', 'start', '02')).toMatchObject({code: 0, body: {state: 'running'}})
    expect(JSON.parse(await readFile(paths.record('shien-cw1', '02'), 'utf8'))).toMatchObject({blade: 'cwa'})
    expect(await readFile(paths.domainXml('shien-cw1', '02'), 'utf8')).toContain('<name>shien-cw1-02</name>')
    // cwb may neither define nor see it as its own.
    expect((await run('b', 'shien-cw1', 'define', '02')).body.error.code).toBe('SLOT_ELSEWHERE')
    expect(await run('a', 'shien-cw1', 'destroy', '02')).toMatchObject({code: 0})
    expect(await run('a', 'shien-cw1', 'undefine', '02')).toMatchObject({code: 0})
    expect(await recordFiles()).toEqual([])
  }, 120_000)

  it("facts: each blade's memory and load, no other account's domain names; placement picks from them", async () => {
    await makeImage('shien-cw2', '01')
    expect(await run('a', 'shien-cw2', 'define', '01')).toMatchObject({code: 0})
    expect(await run('a', 'shien-cw2', 'start', '01')).toMatchObject({code: 0})
    const running = (await virsh('list', '--name')).stdout.split('\n').map((l) => l.trim()).filter(Boolean)
    expect(running).toContain('shien-cw2-01')

    const a = await run('a', 'shien-cw1', 'facts')
    expect(a.code).toBe(0)
    for (const name of running) expect(a.out).not.toContain(name)
    expect(a.out).not.toContain('shien-cw2')
    const nodeKiB = Number(/Memory size:\s+(\d+) KiB/.exec((await virsh('nodeinfo')).stdout)![1])
    expect(a.body).toMatchObject({blade: 'cwa', memoryMiB: Math.floor(nodeKiB / 1024), bladeMemoryMiB: 1_000_000, native: ['x86_64'], emulated: [], drained: false})
    // Other tests' VMs may start or stop meanwhile: at least this one runs.
    expect(a.body.runningVms).toBeGreaterThanOrEqual(1)
    expect(a.body.runningMiB).toBeGreaterThanOrEqual(128)
    const b = await run('b', 'shien-cw1', 'facts')
    expect(b.body).toMatchObject({blade: 'cwb', runningVms: 0, runningMiB: 0, drained: false})

    const vm = {name: 'shien-cw1-01', arch: 'x86_64' as const, memoryMiB: 128}
    const asked = (outA: string, outB: string) => new Map([['cwa', factsFromAnswer('cwa', outA)], ['cwb', factsFromAnswer('cwb', outB)]])
    const placed = placeVm({blades}, asked(a.out, b.out), vm)
    expect(placed.blade.name).toBe('cwb')
    expect(placed.passedOver).toMatchObject([{blade: 'cwa', code: 'BUSIER'}])

    // Drained by an admin, cwb says so, and placement goes to cwa.
    await (await openDrainedBlades(root)).drain('cwb', 'admin1')
    const drained = await run('b', 'shien-cw1', 'facts')
    expect(drained.body.drained).toBe(true)
    const again = placeVm({blades}, asked(a.out, drained.out), vm)
    expect(again.blade.name).toBe('cwa')
    expect(again.passedOver).toMatchObject([{blade: 'cwb', code: 'DRAINED'}])
    // A blade answering as the other is passed over, not believed.
    expect(factsFromAnswer('cwa', b.out)).toMatchObject({reachable: false, why: expect.stringMatching(/answered as cwb, not cwa/)})

    expect(await run('a', 'shien-cw2', 'destroy', '01')).toMatchObject({code: 0})
  }, 120_000)
})
