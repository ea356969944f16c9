/**
 * The cluster's slot records with real files and the real flock(1): another blade is a process
 * of its own (test/support/slot-record-claimant.ts, bundled), and a lock held elsewhere is an
 * flock(1) process holding the lock file.
 */
import {chmod, chown, lstat, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa, type ResultPromise} from 'execa'
import {afterAll, afterEach, beforeAll, beforeEach, describe, expect, it} from 'vitest'

import {clusterPaths} from '../../../src/config/storage-layout.js'
import {writeRootFile} from '../../../src/privileged/root-dir.js'
import {openSlotRecords, type SlotRecords} from '../../../src/privileged/slot-records.js'

const REPO_ROOT = join(import.meta.dirname, '../../..')
const signal = new AbortController().signal
const o = {signal}
let bundle: string
let claimantJs: string

beforeAll(async () => {
  bundle = await mkdtemp(join(tmpdir(), 'shien-claimant-'))
  claimantJs = join(bundle, 'slot-record-claimant.mjs')
  await execa(join(REPO_ROOT, 'node_modules/.bin/rolldown'), ['test/support/slot-record-claimant.ts', '--platform', 'node', '--format', 'esm', '--inlineDynamicImports', '--file', claimantJs], {cwd: REPO_ROOT})
}, 60_000)
afterAll(() => rm(bundle, {recursive: true, force: true}))

let root: string
let paths: ReturnType<typeof clusterPaths>
let records: SlotRecords
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'shien-cluster-'))
  paths = clusterPaths(root)
  records = await openSlotRecords(root)
})
afterEach(() => rm(root, {recursive: true, force: true}))

const onDisk = async (account: string, slot: string) => JSON.parse(await readFile(paths.record(account, slot), 'utf8')) as Record<string, unknown>
const lockFree = async () => (await execa('flock', ['--nonblock', paths.lock, 'true'], {reject: false})).exitCode === 0

/** An flock(1) of the lock file, held until its stdin ends: another blade in the middle of a change. */
// A child process is a promise: handed back inside an object, or the await would wait for its end.
async function holdLock(): Promise<{holder: ResultPromise<{stdin: 'pipe'; reject: false}>}> {
  const holder = execa('flock', ['--exclusive', paths.lock, 'cat'], {stdin: 'pipe', reject: false})
  for (let i = 0; i < 100 && (await lockFree()); i++) await new Promise((r) => setTimeout(r, 20))
  expect(await lockFree()).toBe(false)
  return {holder}
}

type Claimant = ResultPromise<{stdin: 'pipe'; stdout: 'pipe'; reject: false}>

/** Another blade's process, loaded and waiting for the word to claim. */
async function claimant(account: string, slot: string, blade: string): Promise<{other: Claimant}> {
  const child = execa('node', [claimantJs, root, account, slot, blade], {stdin: 'pipe', stdout: 'pipe', reject: false})
  await new Promise<void>((resolve, reject) => {
    let out = ''
    const onData = (chunk: Buffer) => {
      out += chunk.toString()
      if (out.includes('ready\n')) {
        child.stdout.off('data', onData)
        resolve()
      }
    }
    child.stdout.on('data', onData)
    child.catch(reject)
    void child.then((r) => reject(new Error(`the claimant ended before it was ready: ${r.stderr}`)))
  })
  return {other: child}
}

describe('claiming a slot for a blade', () => {
  it('records the blade in a root-owned file, and a second claim by the same blade keeps the record', async () => {
    const first = await records.claim('e195701', '01', 'blade1', o)
    expect(first).toMatchObject({fresh: true, record: {account: 'e195701', slot: '01', blade: 'blade1'}})
    expect(await onDisk('e195701', '01')).toEqual(first.record)
    const info = await lstat(paths.record('e195701', '01'))
    expect([info.isFile(), info.uid, info.mode & 0o022]).toEqual([true, 0, 0])
    expect(await records.claim('e195701', '01', 'blade1', o)).toEqual({fresh: false, record: first.record})
    expect((await stat(paths.slots)).mode & 0o777).toBe(0o755)
    expect(await lockFree()).toBe(true)
  })

  it('is refused when another blade has the slot, naming that blade, and changes nothing', async () => {
    const {record} = await records.claim('e195701', '01', 'blade2', o)
    await expect(records.claim('e195701', '01', 'blade1', o)).rejects.toMatchObject({
      code: 'SLOT_ELSEWHERE',
      exitCode: 6,
      message: `e195701-01 is defined on blade2 (since ${record.since}), so it cannot be defined on blade1: a slot is one VM across the blades.`,
      suggestions: ['Use e195701-01 on blade2, or undefine it there first; an admin can move it to blade1.'],
    })
    expect(await onDisk('e195701', '01')).toEqual(record)
    // Another slot of the same account, and the same slot of another account, are free.
    expect((await records.claim('e195701', '02', 'blade1', o)).fresh).toBe(true)
    expect((await records.claim('k198584', '01', 'blade1', o)).fresh).toBe(true)
  })

  it('waits while another blade holds the lock, and gives up with CLUSTER_LOCKED after the wait', async () => {
    const {holder} = await holdLock()
    const started = Date.now()
    await expect(records.claim('e195701', '01', 'blade1', {signal, waitSeconds: 1})).rejects.toMatchObject({code: 'CLUSTER_LOCKED', exitCode: 6})
    expect(Date.now() - started).toBeGreaterThanOrEqual(900)
    await expect(records.read('e195701', '01')).resolves.toBeUndefined()
    holder.stdin.end()
    await holder
    expect((await records.claim('e195701', '01', 'blade1', o)).fresh).toBe(true)
  })

  it('lets exactly one of two blades racing for a slot have it; the other is told which blade did', async () => {
    for (const slot of ['01', '02', '03']) {
      // Both claimants are made to wait on the lock at the same moment, then let go together.
      const {holder} = await holdLock()
      const {other} = await claimant('e195701', slot, 'blade2')
      other.stdin.write('go\n')
      const mine = records.claim('e195701', slot, 'blade1', o).then((r) => ({ok: r}), (error: unknown) => ({error}))
      let settled = false
      void mine.then(() => (settled = true))
      await new Promise((r) => setTimeout(r, 400))
      expect(settled).toBe(false)
      expect(other.exitCode).toBeNull()
      await expect(records.read('e195701', slot)).resolves.toBeUndefined()
      holder.stdin.end()
      await holder

      const theirs = JSON.parse((await other).stdout.trim().split('\n').at(-1)!) as {fresh?: boolean; error?: {code: string; message: string}}
      const ours = await mine
      const winner = (await onDisk('e195701', slot)).blade
      expect(['blade1', 'blade2']).toContain(winner)
      if (winner === 'blade1') {
        expect(ours).toMatchObject({ok: {fresh: true, record: {blade: 'blade1'}}})
        expect(theirs.error).toMatchObject({code: 'SLOT_ELSEWHERE', message: expect.stringContaining(`e195701-${slot} is defined on blade1`)})
      } else {
        expect(theirs).toMatchObject({fresh: true, record: {blade: 'blade2'}})
        expect(ours).toMatchObject({error: {code: 'SLOT_ELSEWHERE', message: expect.stringContaining(`e195701-${slot} is defined on blade2`)}})
      }
    }
  }, 60_000)

  it('gives a slot to exactly one of many claims made at once in one process', async () => {
    const blades = ['blade1', 'blade2', 'blade3', 'blade4', 'blade5']
    const outcomes = await Promise.allSettled(blades.map((b) => records.claim('e195701', '04', b, o)))
    const won = outcomes.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
    expect(won).toHaveLength(1)
    expect(won[0].fresh).toBe(true)
    for (const r of outcomes) if (r.status === 'rejected') expect(r.reason).toMatchObject({code: 'SLOT_ELSEWHERE', message: expect.stringContaining(`defined on ${won[0].record.blade}`)})
    expect((await onDisk('e195701', '04')).blade).toBe(won[0].record.blade)
  })
})

describe('moving and releasing a slot', () => {
  it('moves the record for the blade that holds it, keeping where it came from', async () => {
    await records.claim('e195701', '01', 'blade1', o)
    const moved = await records.move('e195701', '01', 'blade2', {blade: 'blade1'}, o)
    expect(moved).toMatchObject({blade: 'blade2', from: 'blade1'})
    expect(await onDisk('e195701', '01')).toEqual(moved)
    expect(await records.move('e195701', '01', 'blade2', {blade: 'blade2'}, o)).toEqual(moved)
  })

  it('refuses a move or release by a blade that does not hold the slot, and changes nothing', async () => {
    const {record} = await records.claim('e195701', '01', 'blade1', o)
    await expect(records.move('e195701', '01', 'blade3', {blade: 'blade2'}, o)).rejects.toMatchObject({
      code: 'SLOT_NOT_HOLDER', exitCode: 6, message: `blade2 cannot move e195701-01: blade1 holds it (since ${record.since}).`,
    })
    await expect(records.release('e195701', '01', {blade: 'blade2'}, o)).rejects.toMatchObject({code: 'SLOT_NOT_HOLDER', message: expect.stringContaining('blade2 cannot release e195701-01')})
    expect(await onDisk('e195701', '01')).toEqual(record)
  })

  it('moves a slot on an admin path only from the blade the admin named', async () => {
    await records.claim('e195701', '01', 'blade1', o)
    await expect(records.move('e195701', '01', 'blade3', {admin: true, from: 'blade2'}, o)).rejects.toMatchObject({
      code: 'SLOT_MOVED', message: expect.stringContaining('Cannot move e195701-01 from blade2: it is on blade1 now'),
    })
    expect(await records.move('e195701', '01', 'blade3', {admin: true, from: 'blade1'}, o)).toMatchObject({blade: 'blade3', from: 'blade1'})
    expect(await records.release('e195701', '01', {admin: true, from: 'blade3'}, o)).toMatchObject({blade: 'blade3'})
    await expect(records.read('e195701', '01')).resolves.toBeUndefined()
  })

  it('refuses to move a slot that is defined nowhere; releasing one is a no-op', async () => {
    await expect(records.move('e195701', '01', 'blade2', {admin: true, from: 'blade1'}, o)).rejects.toMatchObject({code: 'SLOT_UNCLAIMED'})
    await expect(records.release('e195701', '01', {blade: 'blade1'}, o)).resolves.toBeUndefined()
  })

  it('releases the holder\'s slot, after which another blade may claim it', async () => {
    await records.claim('e195701', '01', 'blade1', o)
    expect(await records.release('e195701', '01', {blade: 'blade1'}, o)).toMatchObject({blade: 'blade1'})
    expect(await readdir(paths.slots)).toEqual([])
    expect((await records.claim('e195701', '01', 'blade2', o)).record.blade).toBe('blade2')
  })
})

describe('reading the records', () => {
  it('lists every record by domain name, skipping temporary and foreign files', async () => {
    await records.claim('k198584', '02', 'blade2', o)
    await records.claim('e195701', '01', 'blade1', o)
    await records.claim('e195701', '03', 'blade2', o)
    await writeFile(join(paths.slots, '.e195701-04.json.123.abc.tmp'), '{')
    await writeFile(join(paths.slots, 'README'), 'x')
    expect((await records.list()).map((r) => [r.account, r.slot, r.blade])).toEqual([
      ['e195701', '01', 'blade1'], ['e195701', '03', 'blade2'], ['k198584', '02', 'blade2'],
    ])
  })

  it('refuses a damaged record, one naming another slot, and one with unknown fields', async () => {
    await writeFile(paths.record('e195701', '01'), '{"account": ')
    await expect(records.read('e195701', '01')).rejects.toMatchObject({code: 'SLOT_RECORD_INVALID', message: expect.stringContaining('not JSON')})
    await expect(records.claim('e195701', '01', 'blade1', o)).rejects.toMatchObject({code: 'SLOT_RECORD_INVALID'})
    await writeFile(paths.record('e195701', '01'), JSON.stringify({account: 'e195701', slot: '02', blade: 'blade1', since: 'x'}))
    await expect(records.read('e195701', '01')).rejects.toMatchObject({message: expect.stringContaining('it names e195701-02')})
    await writeFile(paths.record('e195701', '01'), JSON.stringify({account: 'e195701', slot: '01', blade: 'blade1', since: 'x', owner: 0}))
    await expect(records.list()).rejects.toMatchObject({code: 'SLOT_RECORD_INVALID'})
  })
})

describe('what is planted in the cluster folders', () => {
  it('refuses a record that is a symlink, leaving its target untouched', async () => {
    const elsewhere = join(root, 'elsewhere.json')
    const planted = JSON.stringify({account: 'e195701', slot: '01', blade: 'blade9', since: 'x'})
    await writeFile(elsewhere, planted)
    await symlink(elsewhere, paths.record('e195701', '01'))
    await expect(records.read('e195701', '01')).rejects.toMatchObject({code: 'SLOT_RECORD_INVALID', message: expect.stringContaining('is a symlink')})
    await expect(records.claim('e195701', '01', 'blade1', o)).rejects.toMatchObject({code: 'SLOT_RECORD_INVALID'})
    await expect(records.release('e195701', '01', {admin: true, from: 'blade9'}, o)).rejects.toMatchObject({code: 'SLOT_RECORD_INVALID'})
    expect(await readFile(elsewhere, 'utf8')).toBe(planted)
    expect((await lstat(paths.record('e195701', '01'))).isSymbolicLink()).toBe(true)
  })

  it('refuses a lock file that is a symlink', async () => {
    await writeFile(join(root, 'victim'), '')
    await symlink(join(root, 'victim'), paths.lock)
    await expect(records.claim('e195701', '01', 'blade1', o)).rejects.toMatchObject({code: 'CLUSTER_LOCK_SYMLINK'})
    await expect(records.read('e195701', '01')).resolves.toBeUndefined()
  })

  it('refuses a slots folder that is a symlink, or under a symlinked cluster folder', async () => {
    const other = await mkdtemp(join(tmpdir(), 'shien-cluster-'))
    try {
      await mkdir(join(other, 'slots'))
      await rm(paths.slots, {recursive: true})
      await symlink(join(other, 'slots'), paths.slots)
      await expect(openSlotRecords(root)).rejects.toMatchObject({code: 'CLUSTER_DIR_UNSAFE', message: expect.stringContaining(`${paths.slots} cannot hold the cluster's records`)})
      await rm(paths.dir, {recursive: true})
      await symlink(other, paths.dir)
      await expect(openSlotRecords(root)).rejects.toMatchObject({code: 'CLUSTER_DIR_UNSAFE', message: expect.stringContaining('symlink')})
      expect(await readdir(join(other, 'slots'))).toEqual([])
    } finally {
      await rm(other, {recursive: true, force: true})
    }
  })

  it('refuses a cluster folder that is not root\'s, or that others may write', async () => {
    await chown(paths.dir, 65_534, 65_534)
    await expect(openSlotRecords(root)).rejects.toMatchObject({code: 'CLUSTER_DIR_UNSAFE', message: expect.stringContaining('owned by uid 65534, not root')})
    await chown(paths.dir, 0, 0)
    await chmod(paths.slots, 0o777)
    await expect(openSlotRecords(root)).rejects.toMatchObject({code: 'CLUSTER_DIR_UNSAFE', message: expect.stringContaining('others may write it (mode 777)')})
  })

  it('writes a record over a planted symlink by replacing the link, never through it', async () => {
    const victim = join(root, 'victim')
    await writeFile(victim, 'keep')
    const target = join(paths.slots, 'planted.json')
    await symlink(victim, target)
    await writeRootFile(target, 'new\n')
    expect(await readFile(victim, 'utf8')).toBe('keep')
    expect((await lstat(target)).isFile()).toBe(true)
    expect(await readFile(target, 'utf8')).toBe('new\n')
    expect((await readdir(paths.slots)).filter((n) => n.endsWith('.tmp'))).toEqual([])
  })
})
