import {firstErrorLine, runTool} from './run.js'

// EX_TEMPFAIL from sysexits.h: what flock(1) is told to exit with when the lock is taken.
const CONFLICT = 75

/** What a flock(1) run on a descriptor came to. */
export type FlockOutcome = {locked: true} | {locked: false; busy: true} | {locked: false; busy: false; message: string}

/**
 * Takes an exclusive flock(2) on an open descriptor of this process, waiting `waitSeconds`
 * (0: not at all).
 *
 * Node has no flock, and a native addon is not wanted, so util-linux `flock(1)` takes it on
 * the descriptor handed over as its fd 3. flock locks belong to the open file description, not
 * to the process that asked: when `flock` exits, the lock stays held through our descriptor until
 * it is closed, and the kernel drops it when this process dies however it dies, so a crash never
 * leaves a stale lock. Two opens of the file (two processes, or two calls in one process)
 * conflict, and GFS2 (with DLM) extends flock to every blade sharing the storage.
 */
export async function flockDescriptor(fd: number, o: {waitSeconds: number; signal?: AbortSignal}): Promise<FlockOutcome> {
  const wait = o.waitSeconds > 0 ? ['--wait', String(o.waitSeconds)] : ['--nonblock']
  const r = await runTool('flock', ['--exclusive', ...wait, '--conflict-exit-code', String(CONFLICT), '3'], {fd3: fd, signal: o.signal})
  if (r.exitCode === 0) return {locked: true}
  if (r.exitCode === CONFLICT) return {locked: false, busy: true}
  return {locked: false, busy: false, message: firstErrorLine(r.stderr)}
}
