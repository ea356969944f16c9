/**
 * What the blade's push queue helper prints, one JSON object a line on its stdout, and how the
 * laptop words it. Positions are counts only: the queue never names other students.
 */
/** The heavy steps of a push: the ones the blade runs only `push.concurrent` at a time. */
export const HEAVY_STEPS = ['convert', 'apply-delta', 'harden'] as const
export type HeavyStep = (typeof HEAVY_STEPS)[number]

export type AdmissionEvent =
  | {type: 'waiting'; ahead: number; running: number; bound: number; elapsedMs: number}
  | {type: 'admitted'; waitedMs: number}
  /** The place was held longer than push.maxHoldMinutes and was given up. */
  | {type: 'expired'; heldMs: number}

/** `1m05s`, `42s`. */
export function formatElapsed(ms: number): string {
  const s = Math.floor(ms / 1000)
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`
}

/** The line the laptop shows while a push waits: `waiting for the blade: 7 pushes ahead (1m05s)`. */
export function waitingText(e: Extract<AdmissionEvent, {type: 'waiting'}>): string {
  const ahead = e.ahead > 0
    ? `${e.ahead} ${e.ahead === 1 ? 'push' : 'pushes'} ahead`
    : `next, ${e.running} of ${e.bound} running`
  return `waiting for the blade: ${ahead} (${formatElapsed(e.elapsedMs)})`
}

/** One line of the helper's stdout as an event, or undefined for anything else. */
export function parseAdmissionEvent(line: string): AdmissionEvent | undefined {
  try {
    const e = JSON.parse(line) as AdmissionEvent
    return ['waiting', 'admitted', 'expired'].includes(e?.type) ? e : undefined
  } catch {
    return undefined
  }
}
