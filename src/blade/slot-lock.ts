/**
 * One push per slot at a time. Every push holds its slot's lock, `<home>/.push-<slot>.lock`, from
 * before its first step that writes anything (the upload) until its last cleanup: the laptop
 * runs `shien blade lock` over its SSH connection and keeps it running for the whole push.
 * The lock is a flock(2) taken as the student on the student's own file, so a student can only
 * ever block their own pushes; the kernel drops it when the holding process dies, so a push
 * whose laptop vanished leaves nothing to clean: the next one takes it over.
 */
import {constants} from 'node:fs'
import {open, type FileHandle} from 'node:fs/promises'
import {dirname, join} from 'node:path'

import {ShienError} from '../errors.js'
import {parseSlot} from '../names.js'
import {flockDescriptor} from '../process/flock.js'
import type {LockResult, SlotHolder} from '../protocol/blade-steps.js'
import type {BladeContext} from './caller.js'

/**
 * In the student's folder, beside images/ rather than in it: the file stays once made (removing
 * a lock file others may have opened would let two pushes hold two files), and images/ holds
 * only images and their records.
 */
export const slotLockPath = (ctx: BladeContext, slot: string) => join(ctx.paths.home, `.push-${slot}.lock`)

export interface HoldOptions {
  /** The laptop's host name, as it names itself. */
  host?: string
  /** Where the connection comes from, as sshd says (SSH_CLIENT's address). */
  from?: string
  /** Aborted when the push ends (the step's stdin closing) or is interrupted: the lock goes then. */
  signal: AbortSignal
  /** Told once the lock is held, with what was written into it. */
  onHeld(holder: SlotHolder): void
}

/**
 * Takes the slot's lock without waiting (SLOT_BUSY, naming the push that has it, when another
 * push holds it), writes who holds it, and holds it until `signal` aborts.
 */
export async function holdSlotLock(ctx: BladeContext, rawSlot: string, o: HoldOptions): Promise<LockResult> {
  const slot = parseSlot(rawSlot)
  const path = slotLockPath(ctx, slot)
  const handle = await openLockFile(path)
  try {
    const taken = await flockDescriptor(handle.fd, {waitSeconds: 0, signal: o.signal})
    if (!taken.locked && taken.busy) throw slotBusy(slot, await readHolder(handle))
    if (!taken.locked) throw new ShienError(`Cannot lock ${path}: ${taken.message}.`, {code: 'LOCK_FAILED', exit: 'remote'})
    const holder: SlotHolder = {slot, startedAt: new Date().toISOString(), host: o.host, from: o.from, pid: process.pid}
    await handle.truncate(0)
    await handle.write(JSON.stringify(holder) + '\n', 0)
    o.onHeld(holder)
    const started = Date.now()
    await untilAborted(o.signal)
    return {slot, startedAt: holder.startedAt, heldMs: Date.now() - started}
  } finally {
    // Closing the one descriptor of this open file description releases the lock.
    await handle.close()
  }
}

/** The lock file, never through a symlink; a FIFO planted in its place does not hang the open. */
async function openLockFile(path: string): Promise<FileHandle> {
  const c = constants
  let handle: FileHandle
  try {
    handle = await open(path, c.O_RDWR | c.O_CREAT | c.O_NOFOLLOW | c.O_NONBLOCK | c.O_NOCTTY, 0o600)
  } catch (error) {
    const e = error as NodeJS.ErrnoException
    if (e.code === 'ENOENT') {
      throw new ShienError(`Your folder ${dirname(path)} does not exist on the storage.`, {code: 'NO_ACCOUNT_DIR', exit: 'refused', suggestions: ['Ask an admin to provision your account on the blades.']})
    }
    const what = e.code === 'ELOOP' ? 'it is a symlink' : e.message
    throw new ShienError(`Cannot open the slot's lock ${path}: ${what}.`, {code: 'LOCK_FAILED', exit: 'remote', cause: error, suggestions: [`Remove it: rm ${path}`]})
  }
  if (!(await handle.stat()).isFile()) {
    await handle.close()
    throw new ShienError(`The slot's lock ${path} is not a regular file.`, {code: 'LOCK_FAILED', exit: 'remote', suggestions: [`Remove it: rm ${path}`]})
  }
  return handle
}

/** Who holds the lock, as the holder wrote it; undefined while it has not yet (or wrote nonsense). */
async function readHolder(handle: FileHandle): Promise<Partial<SlotHolder> | undefined> {
  const buffer = Buffer.alloc(4096)
  const {bytesRead} = await handle.read(buffer, 0, buffer.length, 0)
  try {
    const parsed: unknown = JSON.parse(buffer.subarray(0, bytesRead).toString('utf8'))
    return typeof parsed === 'object' && parsed !== null ? (parsed as Partial<SlotHolder>) : undefined
  } catch {
    return undefined
  }
}

function slotBusy(slot: string, holder: Partial<SlotHolder> | undefined): ShienError {
  const when = typeof holder?.startedAt === 'string' ? ` started ${holder.startedAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}` : ' just started'
  const host = typeof holder?.host === 'string' && holder.host ? ` from the laptop "${holder.host}"` : ''
  const from = typeof holder?.from === 'string' && holder.from ? ` (${holder.from})` : ''
  return new ShienError(`Slot ${slot} is busy: another push to it${when}${host}${from} is still running.`, {
    code: 'SLOT_BUSY',
    exit: 'refused',
    suggestions: [
      'Wait for that push to finish, or stop it with Ctrl-C where it runs, then run this command again.',
      'Or push to another slot with --slot.',
      'A push whose laptop went away frees the slot as soon as the blade notices its connection is gone.',
    ],
  })
}

/** Settles when `signal` aborts; the timer keeps this process alive while it holds the lock. */
function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const alive = setInterval(() => undefined, 60_000)
    signal.addEventListener('abort', () => {
      clearInterval(alive)
      resolve()
    }, {once: true})
  })
}
