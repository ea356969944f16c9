/**
 * A heavy step of a push (convert, apply-delta, harden) runs only once the blade's push queue
 * admits it. The step, as the student, starts the queue's root helper through the sudo rule
 * (`sudo -n /usr/local/bin/ie-virsh admit --step harden --slot 01`), reads its JSON lines, and
 * keeps the helper's stdin open while the work runs: the place lasts exactly as long as that
 * pipe. It is closed here on every path (done, failed, cancelled), and by the kernel when this
 * process dies however it dies. The queue itself, and every check on it, is root's
 * (src/admission/, docs/blade-capacity.md); nothing here decides for anyone else.
 */
import {isAbsolute} from 'node:path'
import {createInterface} from 'node:readline'

import type {BladeConfig} from '../config/blade-config.js'
import {exitCodeName, ShienError} from '../errors.js'
import {parseSlot} from '../names.js'
import {firstErrorLine, startSession, type ChildSession} from '../process/run.js'
import {formatElapsed, parseAdmissionEvent, type AdmissionEvent, type HeavyStep} from '../protocol/admission-events.js'
import {emitBladeEvent} from '../protocol/blade-events.js'
import type {BladeContext} from './caller.js'

export interface AdmissionRequest {
  step: HeavyStep
  slot: string
  /** What runs ie-virsh as root, before `admit ...`: `sudo -n /usr/local/bin/ie-virsh` on a blade. */
  helper: readonly string[]
  signal: AbortSignal
  /** The helper's events as they come: `waiting` as the position changes, `admitted`, `expired`. */
  onEvent?: (event: AdmissionEvent) => void
  /** How long the helper has to leave the queue once its stdin is closed (default 10 s). */
  exitWaitMs?: number
}

/**
 * Waits for the step's place in the blade's push queue, runs `work` holding it, and gives it up
 * when `work` settles. A helper that refuses (PUSH_ALREADY_QUEUED, QUEUE_UNSAFE, ...) fails the
 * step with its error before `work` starts; a helper that cannot be started or reached is
 * ADMISSION_UNAVAILABLE, never a step run outside the queue. Cancelled while waiting, the helper
 * is told at once and the step rejects with the signal's reason.
 */
export async function withAdmission<T>(req: AdmissionRequest, work: () => Promise<T>): Promise<T> {
  req.signal.throwIfAborted()
  const helper = await startHelper(req)
  try {
    await helper.admitted
    return await work()
  } finally {
    await helper.release()
  }
}

/** The command line that runs ie-virsh as root through the sudo rule, from the blade's config. */
export function helperCommand(config: Pick<BladeConfig, 'ieVirsh'>): string[] {
  if (!isAbsolute(config.ieVirsh)) {
    throw new ShienError(`ieVirsh "${config.ieVirsh}" in the blade configuration is not an absolute path.`, {
      code: 'CONFIG_INVALID',
      exit: 'remote',
      suggestions: ['Ask an admin to set ieVirsh in /etc/shien/config.json to the path the sudo rule names.'],
    })
  }
  return ['sudo', '-n', config.ieVirsh]
}

/**
 * A blade command's heavy step: admitted through the blade's own ie-virsh, with the queue's
 * events passed on to the laptop as `@shien` lines on stderr.
 */
export async function admittedStep<T>(ctx: BladeContext, step: HeavyStep, slot: string, signal: AbortSignal, work: () => Promise<T>): Promise<T> {
  const onEvent = (event: AdmissionEvent) => {
    if (event.type !== 'expired') emitBladeEvent(event)
    else emitBladeEvent({type: 'note', message: `this push held its place on the blade for ${formatElapsed(event.heldMs)}, the most allowed; it no longer counts in the queue`})
  }
  // The slot is checked here too: the helper refuses a bad one as a usage error.
  return withAdmission({step, slot: parseSlot(slot), helper: helperCommand(ctx.config), signal, onEvent}, work)
}

interface Helper {
  /** Settles when the helper says `admitted`; rejects when it refuses, fails, or the step is cancelled. */
  admitted: Promise<void>
  /** Closes the helper's stdin (the place goes) and waits for it to leave the queue. */
  release(): Promise<void>
}

async function startHelper(req: AdmissionRequest): Promise<Helper> {
  const [file, ...prefix] = req.helper
  const session = await startSession(file, [...prefix, 'admit', '--step', req.step, '--slot', req.slot])
  // Nothing is written, but the end after the helper is gone must not throw (EPIPE).
  session.stdin.on('error', () => undefined)
  const output = readHelper(session, req.onEvent)
  const leave = once(() => {
    session.stdin.end()
    session.kill('SIGTERM')
  })
  let onAbort: () => void = () => undefined
  const admitted = new Promise<void>((resolve, reject) => {
    void output.admitted.then(resolve)
    // After `admitted` this changes nothing: the place went with the helper, the work goes on.
    void output.ended.then((end) => reject(helperFailed(req, end)))
    onAbort = () => {
      leave()
      reject(req.signal.reason)
    }
  })
  req.signal.addEventListener('abort', onAbort, {once: true})
  // Cancelled while the helper was starting: the listener above will not hear it.
  if (req.signal.aborted) onAbort()
  return {
    admitted: admitted.finally(() => req.signal.removeEventListener('abort', onAbort)),
    release: async () => {
      req.signal.removeEventListener('abort', onAbort)
      leave()
      await exitWithin(session, req.exitWaitMs ?? 10_000)
    },
  }
}

/** How the helper ended: its exit code, its last line that is not an event (the result or error), its stderr. */
interface HelperEnd {
  exitCode: number
  last: string
  stderr: string
}

/** The helper's output: events passed on as they come, `admitted` once it says so, and how it ended. */
function readHelper(session: ChildSession, onEvent?: (event: AdmissionEvent) => void): {admitted: Promise<void>; ended: Promise<HelperEnd>} {
  let stderr = ''
  let last = ''
  session.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-4000)))
  const lines = createInterface({input: session.stdout})
  const admitted = new Promise<void>((resolve) => {
    lines.on('line', (line) => {
      const event = parseAdmissionEvent(line)
      if (event) onEvent?.(event)
      else if (line.trim() !== '') last = line
      if (event?.type === 'admitted') resolve()
    })
  })
  const closed = new Promise<void>((resolve) => lines.once('close', resolve))
  const ended = Promise.all([session.exited, closed]).then(([exit]) => ({exitCode: exit.exitCode, last, stderr: stderr || exit.message}))
  return {admitted, ended}
}

/**
 * `leave`, once: the helper's stdin closes (it leaves within one look at the queue, 500 ms) and
 * it gets one TERM (which sudo passes on only when it came from outside this process group).
 * Never a second TERM: the helper handles the first by leaving the queue, and a second could
 * end it before it has.
 */
function once(fn: () => void): () => void {
  let done = false
  return () => {
    if (!done) fn()
    done = true
  }
}

/** Waits for the helper to exit, so its place is gone when the step's result goes back; bounded. */
async function exitWithin(session: ChildSession, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))
  await Promise.race([session.exited, late])
  clearTimeout(timer)
}

/** The helper ended without admitting the step: its own error, or why it could not be reached. */
function helperFailed(req: AdmissionRequest, {exitCode, last, stderr}: HelperEnd): ShienError {
  const body = errorBody(last)
  // An ie-virsh without `admit` (an older one) answers with a usage error.
  if (body && body.code !== 'USAGE') {
    return new ShienError(body.message ?? 'The blade\'s push queue refused this step.', {
      code: body.code ?? 'ADMISSION_FAILED',
      exit: exitCodeName(body.exitCode ?? exitCode),
      suggestions: body.suggestions,
    })
  }
  const why = body?.message ?? firstErrorLine(stderr)
  return new ShienError(`Cannot reach the blade's push queue (${req.helper.join(' ')} admit, exit ${exitCode}): ${why}`, {
    code: 'ADMISSION_UNAVAILABLE',
    exit: 'remote',
    suggestions: [
      'Ask an admin: every heavy step of a push waits its turn through "sudo -n ie-virsh admit", so ie-virsh and its sudo rule must be installed (docs/ie-virsh.md) and your account provisioned (sudo shien admin provision).',
    ],
  })
}

interface ErrorBody {
  code?: string
  message?: string
  exitCode?: number
  suggestions?: string[]
}

function errorBody(line: string): ErrorBody | undefined {
  try {
    const parsed = JSON.parse(line) as {error?: ErrorBody}
    return parsed && typeof parsed.error === 'object' && parsed.error !== null ? parsed.error : undefined
  } catch {
    return undefined
  }
}
