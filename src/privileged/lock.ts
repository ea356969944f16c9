import {mkdir} from 'node:fs/promises'
import {dirname} from 'node:path'

import {ShienError} from '../errors.js'
import {firstErrorLine, runTool} from '../process/run.js'
import {openExact} from './safe-open.js'

// EX_TEMPFAIL from sysexits.h: flock(1) exits with it when the wait runs out.
const TIMED_OUT = 75

export interface LockOptions {
  signal: AbortSignal
  /** How long to wait for another ie-virsh or ie-docker run on the same account. */
  waitSeconds?: number
}

/**
 * Runs `work` while holding an exclusive flock(2) on the account's lock file.
 *
 * Node has no flock, and a native addon is not wanted in a root binary, so the lock is taken
 * by util-linux `flock(1)` on a descriptor this process opened and hands over as fd 3. flock
 * locks belong to the open file description, not to the process that asked: when `flock`
 * exits, the lock stays held through our descriptor until it is closed, and the kernel drops
 * it if this process dies, so a crash never leaves a stale lock. Two opens of the file
 * (two processes, or two calls in one process) conflict, and GFS2 (with DLM) extends flock
 * to every blade sharing the storage.
 */
export async function withAccountLock<T>(lockPath: string, work: () => Promise<T>, o: LockOptions): Promise<T> {
  const opened = await openExact(lockPath, {code: 'LOCK', create: true}).catch((error: unknown) => {
    if (!(error instanceof ShienError && error.code === 'LOCK_MISSING')) throw error
    throw new ShienError(`Your folder ${dirname(lockPath)} does not exist on the storage.`, {
      code: 'NO_ACCOUNT_DIR',
      exit: 'refused',
      suggestions: ['Ask an admin to provision your account on the blades.'],
    })
  })
  try {
    await takeFlock(opened.handle.fd, lockPath, o)
    return await work()
  } finally {
    // Closing the last descriptor of the open file description releases the lock.
    await opened.handle.close()
  }
}

/**
 * Runs `work` holding the lock of a port pool (`<pool>/.lock`), shared by every blade on the
 * storage: reclaiming ports and handing one to a starting VM must not interleave.
 */
export async function withPoolLock<T>(lockPath: string, work: () => Promise<T>, o: LockOptions): Promise<T> {
  await mkdir(dirname(lockPath), {recursive: true, mode: 0o755})
  const opened = await openExact(lockPath, {code: 'LOCK', create: true})
  try {
    await takeFlock(opened.handle.fd, lockPath, o)
    return await work()
  } finally {
    await opened.handle.close()
  }
}

async function takeFlock(fd: number, lockPath: string, o: LockOptions): Promise<void> {
  const wait = String(o.waitSeconds ?? 60)
  const args = ['--exclusive', '--wait', wait, '--conflict-exit-code', String(TIMED_OUT), '3']
  const r = await runTool('flock', args, {fd3: fd, signal: o.signal})
  if (r.exitCode === TIMED_OUT) {
    throw new ShienError(`Another command on this account has held ${lockPath} for over ${wait} s.`, {
      code: 'LOCKED',
      exit: 'refused',
      suggestions: ['Wait for it to finish, then run the command again.'],
    })
  }
  if (r.exitCode !== 0) {
    throw new ShienError(`Cannot lock ${lockPath}: ${firstErrorLine(r.stderr)}.`, {code: 'LOCK_FAILED', exit: 'remote'})
  }
}
