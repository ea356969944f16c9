/**
 * The slot's push lock with real processes and the real flock(1): each holder is a process of
 * its own (the same hold as `shien blade lock`), told to let go by the end of its stdin.
 */
import {mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa, type ResultPromise} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

const REPO_ROOT = join(import.meta.dirname, '../../..')
let dir: string
let holderJs: string
let storage: string

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'shien-slot-lock-'))
  holderJs = join(dir, 'slot-lock-holder.mjs')
  await execa(join(REPO_ROOT, 'node_modules/.bin/rolldown'), ['test/support/slot-lock-holder.ts', '--platform', 'node', '--format', 'esm', '--inlineDynamicImports', '--file', holderJs], {cwd: REPO_ROOT})
  storage = join(dir, 'storage')
  mkdirSync(join(storage, 'users', 'e195701'), {recursive: true})
}, 60_000)

afterAll(() => {
  if (dir) rmSync(dir, {recursive: true, force: true})
})

type Holder = ResultPromise<{stdin: 'pipe'; stdout: 'pipe'; stderr: 'pipe'; reject: false}>

function startHolder(slot: string, host: string, account = 'e195701'): Holder {
  return execa('node', [holderJs, storage, account, slot, host], {stdin: 'pipe', stdout: 'pipe', stderr: 'pipe', reject: false})
}

/** Resolves with the holder's `locked` event, or rejects with what it printed if it ended first. */
function locked(child: Holder): Promise<{slot: string; startedAt: string; host: string; pid: number}> {
  return new Promise((resolve, reject) => {
    let err = ''
    child.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString()
      const line = err.split('\n').find((l) => l.startsWith('@shien ') && l.includes('"locked"'))
      if (line) resolve(JSON.parse(line.slice('@shien '.length)).holder)
    })
    void child.then((r) => reject(new Error(`ended (${r.exitCode}) without the lock: ${String(r.stdout)} ${err}`)))
  })
}

const lockFile = (slot: string, account = 'e195701') => join(storage, 'users', account, `.push-${slot}.lock`)

describe('a slot\'s push lock', () => {
  it('refuses a second holder at once, naming when and from which laptop the first started', async () => {
    const first = startHolder('01', 'mbp-of-alice')
    const holder = await locked(first)
    expect(holder).toMatchObject({slot: '01', host: 'mbp-of-alice', pid: first.pid})
    expect(JSON.parse(readFileSync(lockFile('01'), 'utf8'))).toMatchObject({host: 'mbp-of-alice', from: '192.0.2.7'})

    const started = Date.now()
    const second = await startHolder('01', 'other-laptop')
    expect(Date.now() - started).toBeLessThan(10_000)
    expect(second.exitCode).toBe(6)
    const {error} = JSON.parse(String(second.stdout))
    expect(error.code).toBe('SLOT_BUSY')
    const shown = holder.startedAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')
    expect(error.message).toBe(`Slot 01 is busy: another push to it started ${shown} from the laptop "mbp-of-alice" (192.0.2.7) is still running.`)

    // Another slot of the same account is not held by it.
    const other = startHolder('02', 'other-laptop')
    await locked(other)
    other.stdin.end()
    expect((await other).exitCode).toBe(0)

    first.stdin.end()
    await first
  }, 60_000)

  it('lets go when its stdin ends (the push is over, or its connection went), and reports how long it held', async () => {
    const first = startHolder('03', 'a')
    await locked(first)
    first.stdin.end()
    const ended = await first
    expect(ended.exitCode).toBe(0)
    expect(JSON.parse(String(ended.stdout))).toMatchObject({slot: '03', heldMs: expect.any(Number)})
    const next = startHolder('03', 'b')
    expect((await locked(next)).host).toBe('b')
    next.stdin.end()
    await next
  }, 60_000)

  it('is free at once when its holder is killed with SIGKILL (nothing to clean, no cleanup ran), and taken over', async () => {
    const first = startHolder('04', 'dead-laptop')
    await locked(first)
    first.kill('SIGKILL')
    await first
    // The dead push's record is still in the file; the kernel dropped its lock.
    expect(JSON.parse(readFileSync(lockFile('04'), 'utf8')).host).toBe('dead-laptop')
    const next = startHolder('04', 'new-laptop')
    expect((await locked(next)).host).toBe('new-laptop')
    expect(JSON.parse(readFileSync(lockFile('04'), 'utf8')).host).toBe('new-laptop')
    next.stdin.end()
    await next
  }, 60_000)

  it('says so when the account has no folder on the storage', async () => {
    const r = await startHolder('01', 'a', 'e195799')
    expect(r.exitCode).toBe(6)
    expect(JSON.parse(String(r.stdout)).error.code).toBe('NO_ACCOUNT_DIR')
  }, 60_000)

  it('never opens its lock through a symlink', async () => {
    const target = join(dir, 'elsewhere')
    writeFileSync(target, 'keep\n')
    symlinkSync(target, lockFile('05'))
    const r = await startHolder('05', 'a')
    expect(r.exitCode).toBe(5)
    expect(JSON.parse(String(r.stdout)).error).toMatchObject({code: 'LOCK_FAILED', message: expect.stringContaining('it is a symlink')})
    expect(readFileSync(target, 'utf8')).toBe('keep\n')
  }, 60_000)
})
