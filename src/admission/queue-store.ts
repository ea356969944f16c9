/**
 * Where the push queue lives: one JSON file in a folder only root can enter (`<runDir>/push-queue`,
 * mode 0700), changed under an flock of a file in that same folder. A student cannot read the
 * queue (no names leak), cannot open its lock file to hold it, and cannot plant either: the folder
 * is checked to be root's, not a link, before anything in it is used.
 */
import {readFileSync} from 'node:fs'
import {lstat, mkdir, readFile, rename, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {ShienError} from '../errors.js'
import {withPoolLock} from '../privileged/lock.js'
import {EMPTY_QUEUE, parseQueue, prune, type Holder, type QueueState} from './queue-state.js'

export interface QueueStore {
  /**
   * The queue as last written, without the entries whose process is gone (`stale` when there
   * were any: an update then writes them out). A read needs no lock: writes replace the file.
   */
  read(): Promise<{state: QueueState; stale: boolean}>
  /** Reads, prunes the entries whose process is gone, applies `change`, writes: under the lock. */
  update<T>(change: (state: QueueState) => {state: QueueState; value: T}, signal: AbortSignal): Promise<T>
}

/** Creates (or checks) the root-only queue folder under `runDir` and returns its store. */
export async function openQueueStore(runDir: string, alive: (h: Holder) => boolean = processAlive): Promise<QueueStore> {
  // As the blade's start lock does (privileged/lock.ts): /run is emptied at boot.
  await mkdir(runDir, {recursive: true, mode: 0o755})
  await checkRootDir(runDir, 0o022, 'runDir')
  const dir = join(runDir, 'push-queue')
  await mkdir(dir, {mode: 0o700}).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error
  })
  await checkRootDir(dir, 0o077, 'the push queue folder')
  const file = join(dir, 'queue.json')
  const load = async (): Promise<QueueState> => {
    const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined
      throw error
    })
    if (text === undefined) return EMPTY_QUEUE
    try {
      return parseQueue(text)
    } catch {
      // Only root writes it, through rename; a damaged file (a full disk) restarts the queue.
      return EMPTY_QUEUE
    }
  }
  return {
    read: async () => {
      const stored = await load()
      const state = prune(stored, alive)
      return {state, stale: state !== stored}
    },
    update: (change, signal) => withPoolLock(join(dir, 'queue.lock'), async () => {
      const before = await load()
      const pruned = prune(before, alive)
      const {state, value} = change(pruned)
      if (state !== before) {
        const temp = `${file}.${process.pid}.tmp`
        await writeFile(temp, JSON.stringify(state), {mode: 0o600})
        await rename(temp, file)
      }
      return value
    }, {signal, waitSeconds: 30}),
  }
}

async function checkRootDir(dir: string, forbidden: number, what: string): Promise<void> {
  const info = await lstat(dir).catch(() => undefined)
  if (!info?.isDirectory() || info.uid !== 0 || (info.mode & forbidden) !== 0) {
    throw new ShienError(`${what} ${dir} must be a folder owned by root that others cannot write${forbidden === 0o077 ? ' or enter' : ''}.`, {
      code: 'QUEUE_UNSAFE',
      exit: 'remote',
      suggestions: ['Ask an admin: the blade\'s runDir (/etc/shien/config.json) is not set up safely.'],
    })
  }
}

/** Field 22 of /proc/PID/stat (start time in clock ticks), or undefined when there is no such process. */
export function startTicks(pid: number): number | undefined {
  try {
    // Synchronous on purpose: a prune reads a handful of small files under the lock.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19])
  } catch {
    return undefined
  }
}

/** A holder is alive while a process with its pid and its start time exists. */
export function processAlive(holder: Holder): boolean {
  return startTicks(holder.pid) === holder.startTicks
}
