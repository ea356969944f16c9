/**
 * A heavy blade step admitted by the real push queue: withAdmission (what `shien blade convert`,
 * `apply-delta` and `harden` run) starting the real ie-virsh (bundled from its entry, dispatching
 * `admit` as on a blade) as root for real accounts, against a root-owned runDir in a temp folder,
 * bound 1. Only sudo is left out: the helper gets SUDO_UID from `env`, as sudo would set it.
 */
import {chmod, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {createInterface} from 'node:readline'

import {execa, type ResultPromise} from 'execa'
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest'

import {withAdmission, type AdmissionRequest} from '../../src/blade/admission.js'
import {ShienError} from '../../src/errors.js'
import type {AdmissionEvent} from '../../src/protocol/admission-events.js'
import {REPO_ROOT} from '../support/cli.js'
import {ensureUser} from '../support/system.js'

const ACCOUNTS = ['shien-q1', 'shien-q2', 'shien-q3']
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('a heavy blade step waits for the push queue', () => {
  let root: string
  let config: string
  let ieVirsh: string
  const uid: Record<string, number> = {}
  const holders: ResultPromise[] = []
  const queue = async () => (JSON.parse(await readFile(join(root, 'run', 'push-queue', 'queue.json'), 'utf8')) as {entries: {uid: number; state: string}[]}).entries

  /** ie-virsh as root for `account`, as `sudo -n ie-virsh` would start it for them. */
  const helperFor = (account: string) => ['/usr/bin/env', `SUDO_UID=${uid[account]}`, `SHIEN_TEST_CONFIG=${config}`, process.execPath, ieVirsh]

  /** Another student's step holding a place: resolves once admitted; `release` ends it. */
  async function hold(account: string) {
    const [file, ...args] = helperFor(account)
    const proc = execa(file, [...args, 'admit', '--step', 'harden', '--slot', '01'], {reject: false, stdin: 'pipe', stdout: 'pipe', buffer: false})
    holders.push(proc)
    await new Promise<void>((resolve, reject) => {
      createInterface({input: proc.stdout!}).on('line', (line) => line.includes('"admitted"') && resolve())
      void proc.then((r) => reject(new Error(`the holder exited: ${String(r.exitCode)}`)))
    })
    return {release: () => proc.stdin!.end(), done: () => proc}
  }

  /** withAdmission for `account`'s convert of slot 02, its events kept. */
  function step<T>(account: string, work: (signal: AbortSignal) => Promise<T>, o: Partial<AdmissionRequest> = {}) {
    const controller = new AbortController()
    const events: AdmissionEvent[] = []
    let ran = false
    const request: AdmissionRequest = {step: 'convert', slot: '02', helper: helperFor(account), signal: controller.signal, onEvent: (e) => events.push(e), ...o}
    const result = withAdmission(request, () => {
      ran = true
      return work(controller.signal)
    })
    result.catch(() => undefined)
    return {result, events, controller, ran: () => ran}
  }

  const until = async (test: () => boolean, what: string) => {
    for (let i = 0; i < 200 && !test(); i++) await sleep(50)
    if (!test()) throw new Error(`timed out waiting for ${what}`)
  }

  beforeAll(async () => {
    for (const a of ACCOUNTS) uid[a] = await ensureUser(a)
    root = await mkdtemp(join(tmpdir(), 'shien-admission-'))
    await chmod(root, 0o755)
    config = join(root, 'config.json')
    await writeFile(config, JSON.stringify({storageRoot: root, runDir: join(root, 'run'), push: {concurrent: 1, maxHoldMinutes: 5}}), {mode: 0o644})
    ieVirsh = join(root, 'ie-virsh.mjs')
    await execa(join(REPO_ROOT, 'node_modules/.bin/rolldown'), ['test/support/ie-virsh-entry.ts', '--platform', 'node', '--format', 'esm', '--inlineDynamicImports', '--file', ieVirsh], {cwd: REPO_ROOT})
  }, 120_000)

  afterEach(async () => {
    for (const p of holders.splice(0)) {
      p.kill('SIGKILL')
      await p.catch(() => undefined)
    }
  })

  afterAll(async () => {
    if (root) await rm(root, {recursive: true, force: true})
  })

  it('waits behind a held place, reporting it, runs once the place frees, and leaves the queue', async () => {
    const holder = await hold('shien-q1')
    const s = step('shien-q2', async () => {
      // While the work runs, the step holds the one running place.
      expect(await queue()).toEqual([expect.objectContaining({uid: uid['shien-q2'], state: 'running'})])
      return 'converted'
    })
    await until(() => s.events.some((e) => e.type === 'waiting'), 'a waiting event')
    expect(s.events[0]).toMatchObject({type: 'waiting', ahead: 0, running: 1, bound: 1})
    await sleep(1200)
    expect(s.ran()).toBe(false)
    holder.release()
    expect(await s.result).toBe('converted')
    expect(s.events.at(-1)).toMatchObject({type: 'admitted', waitedMs: expect.any(Number)})
    expect((s.events.at(-1) as {waitedMs: number}).waitedMs).toBeGreaterThanOrEqual(1200)
    expect(await queue()).toEqual([])
  }, 60_000)

  it('gives its place up when the work fails, with the work\'s error', async () => {
    const s = step('shien-q2', async () => {
      throw new ShienError('qemu-img could not convert the disk', {code: 'CONVERT_FAILED', exit: 'remote'})
    })
    await expect(s.result).rejects.toMatchObject({code: 'CONVERT_FAILED'})
    expect(await queue()).toEqual([])
  }, 60_000)

  it('leaves the queue at once when cancelled while waiting, and never runs the work', async () => {
    await hold('shien-q1')
    const s = step('shien-q2', async () => 'never')
    await until(() => s.events.some((e) => e.type === 'waiting'), 'a waiting event')
    const t0 = performance.now()
    s.controller.abort(new Error('interrupted'))
    await expect(s.result).rejects.toThrow('interrupted')
    expect(performance.now() - t0).toBeLessThan(3000)
    expect(s.ran()).toBe(false)
    expect(await queue()).toEqual([expect.objectContaining({uid: uid['shien-q1']})])
  }, 60_000)

  it('reaches the helper through a real sudo in between (root may run anything): waits, and leaves when cancelled', async () => {
    await hold('shien-q1')
    // As on a blade, where the student's step runs `sudo -n ie-virsh admit`: sudo passes the
    // helper its stdin, and does not pass on a TERM from the step's own process group.
    const s = step('shien-q2', async () => 'never', {helper: ['sudo', '-n', ...helperFor('shien-q2')]})
    await until(() => s.events.some((e) => e.type === 'waiting'), 'a waiting event')
    s.controller.abort(new Error('interrupted'))
    await expect(s.result).rejects.toThrow('interrupted')
    expect(await queue()).toEqual([expect.objectContaining({uid: uid['shien-q1']})])
  }, 60_000)

  it('gives its place up when cancelled while it runs', async () => {
    const s = step('shien-q2', (signal) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), {once: true})))
    await until(() => s.ran(), 'the work to start')
    s.controller.abort(new Error('interrupted'))
    await expect(s.result).rejects.toThrow('interrupted')
    expect(await queue()).toEqual([])
  }, 60_000)

  it('fails with the queue\'s refusal, before any work, when the account already has a place', async () => {
    await hold('shien-q1')
    const s = step('shien-q1', async () => 'never')
    await expect(s.result).rejects.toMatchObject({code: 'PUSH_ALREADY_QUEUED', exitCode: 6, suggestions: [expect.stringMatching(/Wait for your other push/)]})
    expect(s.ran()).toBe(false)
    expect(await queue()).toHaveLength(1)
  }, 60_000)

  it('is an error, never a step outside the queue, when the helper cannot be reached', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['/nonexistent/ie-virsh'], /ENOENT|not found|no such file/i],
      // sudo without a rule for the command: what a student outside the sudo rule gets.
      [['setpriv', `--reuid=${uid['shien-q3']}`, '--regid=65534', '--clear-groups', '--', 'sudo', '-n', '/nonexistent/ie-virsh'], /password is required|not allowed/],
      // An ie-virsh from before admit: a usage error.
      [[...helperFor('shien-q3'), 'list'], /Unknown option|unexpected argument|takes no arguments/i],
    ]
    for (const [helper, why] of cases) {
      const s = step('shien-q3', async () => 'never', {helper})
      const error = await s.result.catch((e: unknown) => e)
      expect(error, helper.join(' ')).toMatchObject({code: 'ADMISSION_UNAVAILABLE', exitCode: 5, suggestions: [expect.stringMatching(/shien admin provision/)]})
      expect((error as Error).message).toMatch(why)
      expect(s.ran()).toBe(false)
    }
  }, 60_000)
})
