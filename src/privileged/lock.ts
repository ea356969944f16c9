import {mkdir} from 'node:fs/promises'
import {dirname} from 'node:path'

import {ShienError} from '../errors.js'
import {flockDescriptor} from '../process/flock.js'
import {openExact} from './safe-open.js'

export interface LockOptions {
  signal: AbortSignal
  /** How long to wait for another ie-virsh or ie-docker run on the same account. */
  waitSeconds?: number
}

/**
 * Runs `work` while holding an exclusive flock(2) on the account's lock file, taken on a
 * descriptor this process opened (process/flock.ts: released when it is closed or this process
 * dies, so a crash never leaves a stale lock).
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
  const wait = o.waitSeconds ?? 60
  const r = await flockDescriptor(fd, {waitSeconds: wait, signal: o.signal})
  if (r.locked) return
  if (r.busy) {
    throw new ShienError(`Another command on this account has held ${lockPath} for over ${wait} s.`, {
      code: 'LOCKED',
      exit: 'refused',
      suggestions: ['Wait for it to finish, then run the command again.'],
    })
  }
  throw new ShienError(`Cannot lock ${lockPath}: ${r.message}.`, {code: 'LOCK_FAILED', exit: 'remote'})
}
