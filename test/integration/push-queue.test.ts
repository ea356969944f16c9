/**
 * The blade's push queue against students: the root helper (what `sudo ie-virsh admit` runs) as
 * real processes, for real accounts, on a root-owned runDir in a temp folder. Every attack of
 * issue 14 is made here and refused: a second place, a place kept after kill -9, reading the
 * queue, holding its lock, 20 takers at once, garbage in arguments, caller and stdin.
 */
import {spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {createInterface} from 'node:readline'

import {execa, type ResultPromise} from 'execa'
import {afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished} from 'vitest'

import {parseAdmissionEvent, type AdmissionEvent} from '../../src/protocol/admission-events.js'
import {REPO_ROOT} from '../support/cli.js'
import {ensureUser} from '../support/system.js'

const ACCOUNTS = ['shien-q1', 'shien-q2', 'shien-q3', 'shien-q4']

interface Taker {
  proc: ResultPromise
  events: AdmissionEvent[]
  /** Resolves with the first event (already seen or to come) that matches. */
  next(type: AdmissionEvent['type'], test?: (e: AdmissionEvent) => boolean): Promise<AdmissionEvent>
  /** The student's step is done: close the helper's stdin. */
  release(): void
  /** Exit code and the final object the helper printed. */
  done(): Promise<{exitCode: number; last: any}>
}

describe('the push queue helper', () => {
  let root: string
  let runDir: string
  let config: string
  let helper: string
  const uid: Record<string, number> = {}
  const gid: Record<string, number> = {}
  const started: ResultPromise[] = []
  const queueFile = () => join(runDir, 'push-queue', 'queue.json')
  const queue = async () => JSON.parse(await readFile(queueFile(), 'utf8')) as {entries: {uid: number; state: string}[]}

  const asStudent = (account: string, argv: string[]) =>
    execa('setpriv', [`--reuid=${uid[account]}`, `--regid=${gid[account]}`, '--clear-groups', '--', ...argv], {reject: false})

  function take(account: string | undefined, opts: {args?: string[]; env?: Record<string, string>; configPath?: string} = {}): Taker {
    const env: Record<string, string> = {PATH: process.env.PATH!, SHIEN_TEST_CONFIG: opts.configPath ?? config, ...opts.env}
    if (account) env.SUDO_UID = String(uid[account])
    const proc = execa('node', [helper, ...(opts.args ?? ['--step', 'harden', '--slot', '01'])], {
      env, extendEnv: false, reject: false, stdin: 'pipe', stdout: 'pipe', buffer: false,
    })
    started.push(proc)
    const events: AdmissionEvent[] = []
    const lines: string[] = []
    const waiters: (() => void)[] = []
    createInterface({input: proc.stdout!}).on('line', (line) => {
      lines.push(line)
      const e = parseAdmissionEvent(line)
      if (e) events.push(e)
      for (const w of waiters.splice(0)) w()
    })
    const ended = new Promise<void>((resolve) => proc.stdout!.once('close', resolve))
    return {
      proc,
      events,
      next: (type, test = () => true) => new Promise((resolve, reject) => {
        const check = () => {
          const hit = events.find((e) => e.type === type && test(e))
          if (hit) resolve(hit)
          else if (proc.exitCode !== null) reject(new Error(`helper exited without ${type}: ${lines.join('\n')}`))
          else waiters.push(check)
        }
        void ended.then(() => setTimeout(check, 50))
        check()
      }),
      release: () => proc.stdin?.end(),
      done: async () => {
        const r = await proc
        await ended
        return {exitCode: r.exitCode ?? -1, last: JSON.parse(lines.at(-1) ?? 'null')}
      },
    }
  }

  beforeAll(async () => {
    for (const a of ACCOUNTS) {
      uid[a] = await ensureUser(a)
      gid[a] = Number((await execa('id', ['-g', a])).stdout)
    }
    root = await mkdtemp(join(tmpdir(), 'shien-queue-'))
    await chmod(root, 0o755)
    // Not there yet: the helper creates it, as /run/shien after a boot.
    runDir = join(root, 'run')
    config = join(root, 'config.json')
    await writeFile(config, JSON.stringify({storageRoot: root, runDir, push: {concurrent: 2, maxHoldMinutes: 5}}), {mode: 0o644})
    helper = join(root, 'admission-helper.mjs')
    await execa(join(REPO_ROOT, 'node_modules/.bin/rolldown'), ['test/support/admission-helper.ts', '--platform', 'node', '--format', 'esm', '--inlineDynamicImports', '--file', helper], {cwd: REPO_ROOT})
  }, 120_000)

  afterEach(async () => {
    for (const p of started.splice(0)) {
      p.kill('SIGKILL')
      await p.catch(() => undefined)
    }
  })

  afterAll(async () => {
    if (root) await rm(root, {recursive: true, force: true})
  })

  it('admits at most the bound, first come first served, showing counts only and elapsed time', async () => {
    const [a, b, c, d] = ACCOUNTS.map((acc) => ({acc, t: undefined as Taker | undefined}))
    a.t = take(a.acc)
    await a.t.next('admitted')
    b.t = take(b.acc)
    await b.t.next('admitted')
    c.t = take(c.acc)
    expect(await c.t.next('waiting')).toMatchObject({ahead: 0, running: 2, bound: 2})
    d.t = take(d.acc)
    expect(await d.t.next('waiting')).toMatchObject({ahead: 1, running: 2})
    expect((await queue()).entries.filter((e) => e.state === 'running')).toHaveLength(2)
    // The second running step ends first: the first in line (c), not d, goes next.
    b.t.release()
    await c.t.next('admitted')
    expect(await d.t.next('waiting', (e) => e.type === 'waiting' && e.ahead === 0)).toMatchObject({running: 2})
    expect(d.t.events.some((e) => e.type === 'admitted')).toBe(false)
    expect((await b.t.done())).toMatchObject({exitCode: 0, last: {outcome: 'released'}})
    a.t.release()
    await d.t.next('admitted')
    c.t.release()
    d.t.release()
    await Promise.all([a.t.done(), c.t.done(), d.t.done()])
    expect((await queue()).entries).toEqual([])
    // What a waiting student saw: counts and times, never an account or a uid.
    for (const e of d.t.events) expect(Object.keys(e).sort()).toEqual(e.type === 'waiting' ? ['ahead', 'bound', 'elapsedMs', 'running', 'type'] : ['type', 'waitedMs'])
  }, 60_000)

  it('refuses a second place to the same student, waiting or running', async () => {
    const first = take('shien-q1')
    await first.next('admitted')
    const second = await take('shien-q1', {args: ['--step', 'convert', '--slot', '02']}).done()
    expect(second).toMatchObject({exitCode: 6, last: {error: {code: 'PUSH_ALREADY_QUEUED'}}})
    const other = take('shien-q2')
    await other.next('admitted')
    const waiting = take('shien-q3')
    await waiting.next('waiting')
    expect((await take('shien-q3').done()).last.error.code).toBe('PUSH_ALREADY_QUEUED')
    expect((await queue()).entries.map((e) => e.uid).sort()).toEqual([uid['shien-q1'], uid['shien-q2'], uid['shien-q3']].sort())
  }, 60_000)

  it('gives 20 parallel takers of one student exactly one place', async () => {
    const takers = Array.from({length: 20}, () => take('shien-q1'))
    const results = await Promise.all(takers.map(async (t) => {
      const r = await Promise.race([t.next('admitted').then(() => 'admitted'), t.done().then((d) => d.last?.error?.code)])
      return r
    }))
    expect(results.filter((r) => r === 'admitted')).toHaveLength(1)
    expect(results.filter((r) => r === 'PUSH_ALREADY_QUEUED')).toHaveLength(19)
    expect((await queue()).entries).toHaveLength(1)
  }, 60_000)

  it('frees the place when the student\'s process is killed -9, and when the helper is', async () => {
    // The student's step holds the helper's stdin (and this test lets go of it); kill -9 the
    // student's process and the pipe closes.
    const a = take('shien-q1')
    const student = spawn('setpriv', [`--reuid=${uid['shien-q1']}`, `--regid=${gid['shien-q1']}`, '--clear-groups', '--', 'sleep', '600'], {stdio: ['ignore', a.proc.stdin!, 'ignore']})
    a.proc.stdin!.destroy()
    onTestFinished(() => void student.kill('SIGKILL'))
    await a.next('admitted')
    const b = take('shien-q2')
    await b.next('admitted')
    const c = take('shien-q3')
    await c.next('waiting')
    student.kill('SIGKILL')
    await c.next('admitted')
    expect((await a.done()).exitCode).toBe(0)
    // The helper itself killed -9 (it cannot clean up): the next look at the queue drops it.
    const d = take('shien-q4')
    await d.next('waiting')
    b.proc.kill('SIGKILL')
    await d.next('admitted')
    expect((await queue()).entries.map((e) => e.uid).sort()).toEqual([uid['shien-q3'], uid['shien-q4']].sort())
  }, 60_000)

  it('leaves the queue at once on Ctrl-C, a hang-up or a closed stdin while waiting', async () => {
    const holders = [take('shien-q1'), take('shien-q2')]
    for (const h of holders) await h.next('admitted')
    const waiting = [take('shien-q3')]
    await waiting[0].next('waiting')
    waiting.push(take('shien-q4'))
    await waiting[1].next('waiting', (e) => e.type === 'waiting' && e.ahead === 1)
    waiting[0].proc.kill('SIGINT')
    expect(await waiting[0].done()).toMatchObject({exitCode: 130, last: {error: {code: 'CANCELLED'}}})
    await waiting[1].next('waiting', (e) => e.type === 'waiting' && e.ahead === 0)
    waiting[1].proc.kill('SIGHUP')
    expect((await waiting[1].done()).exitCode).toBe(130)
    const third = take('shien-q3')
    await third.next('waiting')
    third.release()
    expect((await third.done()).last.error.code).toBe('PUSH_LEFT_QUEUE')
    expect((await queue()).entries).toHaveLength(2)
    // Ctrl-C to a helper holding its place: it gives the place up and ends by itself.
    holders[0].proc.kill('SIGINT')
    expect(await holders[0].done()).toMatchObject({exitCode: 130, last: {error: {code: 'CANCELLED'}}})
    expect((await queue()).entries.map((e) => e.uid)).toEqual([uid['shien-q2']])
  }, 60_000)

  it('keeps the queue and its lock out of students\' reach', async () => {
    const holder = take('shien-q1')
    await holder.next('admitted')
    const dir = join(runDir, 'push-queue')
    for (const argv of [['ls', dir], ['cat', queueFile()], ['flock', '-n', join(dir, 'queue.lock'), 'true'], ['touch', join(dir, 'x')]]) {
      const r = await asStudent('shien-q2', argv)
      expect(r.exitCode, argv.join(' ')).not.toBe(0)
      expect(r.stderr).toMatch(/Permission denied/)
    }
    // A runDir a student can write (so could plant the queue folder) is refused outright.
    const planted = join(root, 'student-run')
    await mkdir(join(planted, 'push-queue'), {recursive: true})
    await chown(planted, uid['shien-q2'], gid['shien-q2'])
    const badConfig = join(root, 'bad.json')
    await writeFile(badConfig, JSON.stringify({storageRoot: root, runDir: planted}), {mode: 0o644})
    expect((await take('shien-q3', {configPath: badConfig}).done()).last.error.code).toBe('QUEUE_UNSAFE')
    await chown(planted, 0, 0)
    await chown(join(planted, 'push-queue'), uid['shien-q2'], gid['shien-q2'])
    expect((await take('shien-q3', {configPath: badConfig}).done()).last.error.code).toBe('QUEUE_UNSAFE')
  }, 60_000)

  it('refuses garbage in arguments and caller, and ignores garbage on stdin', async () => {
    for (const args of [[], ['--step', 'rm -rf /', '--slot', '01'], ['--step', 'harden', '--slot', '../01'], ['--step', 'harden', '--step', 'harden'], ['--step', 'harden', '--slot', '01', '--x']]) {
      expect((await take('shien-q1', {args}).done()).exitCode, args.join(' ')).toBeGreaterThanOrEqual(2)
    }
    expect((await take(undefined, {env: {SUDO_UID: '0 OR 1'}}).done()).last.error.code).toBe('BAD_CALLER')
    expect((await take(undefined, {env: {SUDO_UID: '4000000000'}}).done()).last.error.code).toBe('BAD_CALLER')
    const a = take('shien-q1')
    await a.next('admitted')
    a.proc.stdin!.write(randomBytes(8 << 20))
    a.proc.stdin!.write('\n{"type":"admitted"}\nrelease\n\0\0\0')
    const b = take('shien-q2')
    await b.next('admitted')
    const c = take('shien-q3')
    await c.next('waiting')
    // The garbage released nothing: the place goes only when stdin closes.
    await new Promise((r) => setTimeout(r, 500))
    expect(c.events.some((e) => e.type === 'admitted')).toBe(false)
    a.release()
    await c.next('admitted')
    expect((await queue()).entries.every((e) => typeof e.uid === 'number')).toBe(true)
  }, 60_000)
})
