/**
 * ie-virsh with a cluster section: the slot records and kept XML on real files (the storage root
 * of the harness), libvirt faked. Blade B is the same storage with a config whose `self` is
 * another blade and a libvirt of its own.
 */
import {lstat, mkdir, readFile, readdir, rm, stat, symlink, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {ExitCode} from '../../../src/errors.js'
import {clusterPaths} from '../../../src/config/storage-layout.js'
import {FakeHypervisor, Harness} from './harness.js'

const blade = (name: string, port: number) => ({name, ssh: `127.0.0.1:${port}`, migrationUri: `qemu+ssh://root@${name}/system`, native: ['x86_64']})
const CLUSTER = {blades: [blade('blade1', 2201), blade('blade2', 2202)]}

describe('ie-virsh and the slot records', () => {
  const h = new Harness()
  let paths: ReturnType<typeof clusterPaths>
  const record = async (slot: string) => JSON.parse(await readFile(paths.record('e195701', slot), 'utf8')) as Record<string, unknown>
  const recordFiles = () => readdir(paths.slots).catch(() => [] as string[])
  const xmlFiles = () => readdir(paths.domains).catch(() => [] as string[])

  /** Runs as blade `self` (its own libvirt), then comes back to blade1's. */
  async function asBlade<T>(self: string, hv: FakeHypervisor, work: () => Promise<T>): Promise<T> {
    const mine = h.hv
    await h.writeConfig({cluster: {...CLUSTER, self}})
    h.hv = hv
    try {
      return await work()
    } finally {
      h.hv = mine
      await h.writeConfig({cluster: CLUSTER})
    }
  }

  beforeEach(async () => {
    await h.setUp({cluster: CLUSTER})
    paths = clusterPaths(h.root)
  })
  afterEach(() => h.tearDown())

  it('define claims the slot for this blade and keeps the XML it defined, root\'s alone', async () => {
    expect(await h.run(['define', '01'])).toBe(0)
    expect(await record('01')).toMatchObject({account: 'e195701', slot: '01', blade: 'blade1'})
    const kept = await readFile(paths.domainXml('e195701', '01'), 'utf8')
    expect(kept).toBe(h.hv.domains.get('e195701-01')!.xml)
    expect((await stat(paths.domainXml('e195701', '01'))).mode & 0o777).toBe(0o600)
    expect((await stat(paths.domains)).mode & 0o777).toBe(0o700)
  })

  it('refuses a define on another blade while this one holds the slot: SLOT_ELSEWHERE, nothing defined there', async () => {
    expect(await h.run(['define', '01'])).toBe(0)
    const other = new FakeHypervisor()
    const code = await asBlade('blade2', other, () => h.run(['define', '01', '--json']))
    expect(code).toBe(ExitCode.refused)
    expect(h.json().error.code).toBe('SLOT_ELSEWHERE')
    expect(h.json().error.message).toMatch(/defined on blade1 .* cannot be defined on blade2/)
    expect(other.calls).toEqual([])
    expect(await record('01')).toMatchObject({blade: 'blade1'})
    // blade1's kept XML is untouched, and blade2 took no port.
    expect(await readFile(paths.domainXml('e195701', '01'), 'utf8')).toBe(h.hv.domains.get('e195701-01')!.xml)
    expect(await h.portFiles()).toEqual(['22000'])
  })

  it('leaves no record and no XML when libvirt refuses the definition', async () => {
    h.hv.failDefine = true
    expect(await h.run(['define', '01'])).toBe(ExitCode.remote)
    expect(await recordFiles()).toEqual([])
    expect(await xmlFiles()).toEqual([])
    expect(await h.portFiles()).toEqual([])
  })

  it("keeps libvirt's refusal as the answer when the claim cannot be given back, and says so", async () => {
    h.hv.failDefine = true
    // While libvirt is asked, the record is replaced by a symlink: releasing it is refused.
    const target = join(h.root, 'elsewhere.json')
    await writeFile(target, 'not a record\n')
    h.hv.onDefine = async () => {
      await rm(paths.record('e195701', '01'))
      await symlink(target, paths.record('e195701', '01'))
    }
    expect(await h.run(['define', '01', '--json'])).toBe(ExitCode.remote)
    const {error} = h.json()
    expect(error.code).toBe('VIRSH_FAILED')
    expect(error.message).toBe('libvirt could not define the domain: libvirt said no.')
    expect(error.exitCode).toBe(ExitCode.remote)
    expect(error.suggestions).toEqual([expect.stringMatching(/^Slot 01's record could not be given back \(SLOT_RECORD_INVALID: .* is a symlink; only real files are accepted here\), so it may still name this blade: ask an admin/)])
    // Nothing was written through the symlink; the kept XML and the port went all the same.
    expect(await readFile(target, 'utf8')).toBe('not a record\n')
    expect(await xmlFiles()).toEqual([])
    expect(await h.portFiles()).toEqual([])
  })

  it('undefine gives the record and the XML back, so another blade may define the slot', async () => {
    expect(await h.run(['define', '01'])).toBe(0)
    expect(await h.run(['undefine', '01'])).toBe(0)
    expect(await recordFiles()).toEqual([])
    expect(await xmlFiles()).toEqual([])
    const other = new FakeHypervisor()
    expect(await asBlade('blade2', other, () => h.run(['define', '01']))).toBe(0)
    expect(await record('01')).toMatchObject({blade: 'blade2'})
  })

  it('claims a slot defined before the cluster section on first sight: define, start and list', async () => {
    await h.writeConfig({})
    expect(await h.run(['define', '01'])).toBe(0)
    expect(await h.run(['define', '02'])).toBe(0)
    expect(await h.run(['define', '03'])).toBe(0)
    // Without the section nothing of the cluster exists.
    await expect(lstat(paths.dir)).rejects.toThrow(/ENOENT/)
    await h.writeConfig({cluster: CLUSTER})

    expect(await h.run(['define', '01', '--json'])).toBe(ExitCode.refused)
    expect(h.json().error.code).toBe('SLOT_DEFINED')
    expect(await record('01')).toMatchObject({blade: 'blade1'})
    expect(await h.run(['start', '02'])).toBe(0)
    expect(await record('02')).toMatchObject({blade: 'blade1'})
    expect(await h.run(['list'])).toBe(0)
    expect(await record('03')).toMatchObject({blade: 'blade1'})
    // Each one's definition is kept, as libvirt has it.
    expect(await readFile(paths.domainXml('e195701', '03'), 'utf8')).toBe(h.hv.domains.get('e195701-03')!.xml)
  })

  it('refuses to start a slot recorded on another blade, and list shows where it is recorded', async () => {
    await h.writeConfig({})
    expect(await h.run(['define', '01'])).toBe(0)
    await h.writeConfig({cluster: CLUSTER})
    // blade2 defined it meanwhile (the same slot, defined on two blades: an admin's matter).
    const other = new FakeHypervisor()
    expect(await asBlade('blade2', other, () => h.run(['define', '01']))).toBe(0)

    expect(await h.run(['start', '01', '--json'])).toBe(ExitCode.refused)
    expect(h.json().error.code).toBe('SLOT_ELSEWHERE')
    expect(h.hv.calls.filter((c) => c.startsWith('start'))).toEqual([])
    expect(await h.run(['list', '--json'])).toBe(0)
    expect(h.json().domains).toMatchObject([{slot: '01', recordedOn: 'blade2'}])
    // Undefining blade1's copy leaves blade2's record and XML alone.
    expect(await h.run(['undefine', '01'])).toBe(0)
    expect(await record('01')).toMatchObject({blade: 'blade2'})
    expect(await readFile(paths.domainXml('e195701', '01'), 'utf8')).toBe(other.domains.get('e195701-01')!.xml)
  })

  it('list does not wait out another command holding the account\'s lock: the next command claims', async () => {
    await h.writeConfig({})
    expect(await h.run(['define', '01'])).toBe(0)
    await h.writeConfig({cluster: CLUSTER})
    const lock = join(h.root, 'users', 'e195701', '.lock')
    // A shutdown with a long timeout, say: flock(1) holds the account's lock until its stdin ends.
    const holder = execa('flock', ['--exclusive', lock, 'cat'], {stdin: 'pipe', reject: false})
    try {
      for (let i = 0; i < 100 && (await execa('flock', ['--nonblock', lock, 'true'], {reject: false})).exitCode === 0; i++) await new Promise((r) => setTimeout(r, 20))
      const started = Date.now()
      expect(await h.run(['list', '--json'])).toBe(0)
      expect(Date.now() - started).toBeLessThan(10_000)
      expect(h.json().domains).toMatchObject([{slot: '01'}])
      expect(await recordFiles()).toEqual([])
    } finally {
      holder.stdin.end()
      await holder
    }
    expect(await h.run(['list'])).toBe(0)
    expect(await record('01')).toMatchObject({blade: 'blade1'})
  })

  it('refuses a symlink planted at the XML folder before anything is claimed or defined', async () => {
    const elsewhere = join(h.root, 'users', 'e195701', 'planted')
    await mkdir(paths.dir, {recursive: true})
    await mkdir(elsewhere)
    await symlink(elsewhere, paths.domains)
    expect(await h.run(['define', '01', '--json'])).toBe(ExitCode.remote)
    expect(h.json().error.code).toBe('CLUSTER_DIR_UNSAFE')
    expect(h.hv.calls).toEqual([])
    expect(await recordFiles()).toEqual([])
    expect(await readdir(elsewhere)).toEqual([])
    await rm(paths.domains)
  })

  it('makes no cluster folder without a cluster section', async () => {
    await h.writeConfig({})
    expect(await h.run(['define', '01'])).toBe(0)
    expect(await h.run(['start', '01'])).toBe(0)
    expect(await h.run(['list'])).toBe(0)
    expect(await h.run(['destroy', '01'])).toBe(0)
    expect(await h.run(['undefine', '01'])).toBe(0)
    await expect(lstat(paths.dir)).rejects.toThrow(/ENOENT/)
  })
})
