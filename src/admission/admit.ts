/**
 * The place of one heavy step in the blade's push queue, taken and held by a root helper the
 * student's step starts through the sudo rule (`sudo -n ie-virsh admit --step harden --slot 01`):
 * it joins the queue as the caller (SUDO_UID), reports its position as it changes, says
 * `admitted`, and holds the place until its stdin closes, which happens when the student's step
 * finishes, is cancelled or dies (its end of the pipe closes with it). The place also goes when
 * the helper itself dies: the next reader of the queue finds its pid gone and drops it.
 */
import {ShienError} from '../errors.js'
import type {AdmissionEvent} from '../protocol/admission-events.js'
import {admit, join, leave, placeOf, positionOf, type HeavyStep, type Position} from './queue-state.js'
import {startTicks, type QueueStore} from './queue-store.js'

export interface AdmitRequest {
  uid: number
  step: HeavyStep
  slot: string
  /** push.concurrent: heavy steps at once on this blade. */
  bound: number
  /** push.maxHoldMinutes, in ms: the place is given up after this long. */
  maxHoldMs: number
}

export interface AdmitIO {
  store: QueueStore
  emit: (event: AdmissionEvent) => void
  /** Settles when the student's step is done with the place (the helper's stdin closed). */
  released: Promise<void>
  signal: AbortSignal
  /** How often a waiting helper looks at the queue again; a changed position is reported at once. */
  pollMs?: number
  now?: () => number
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms)
    function done() {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done, {once: true})
  })

/** Waits for a place, holds it while the step runs, and leaves the queue on every path. */
export async function holdPlace(req: AdmitRequest, io: AdmitIO): Promise<{waitedMs: number; heldMs: number; outcome: 'released' | 'expired'}> {
  const now = io.now ?? Date.now
  const pid = process.pid
  const holder = {pid, startTicks: startTicks(pid) ?? 0}
  const joinedAt = now()
  const ticket = await io.store.update((state) => {
    if (placeOf(state, req.uid)) {
      throw new ShienError('You already have a push waiting or running on this blade; one at a time per account.', {
        code: 'PUSH_ALREADY_QUEUED',
        exit: 'refused',
        suggestions: ['Wait for your other push to finish (or stop it), then push again.'],
      })
    }
    const joined = join(state, {uid: req.uid, step: req.step, slot: req.slot, holder, joinedAt})
    return {state: joined.state, value: joined.ticket}
  }, io.signal)
  let released = false
  void io.released.then(() => {
    released = true
  })
  try {
    await waitForTurn(req, io, ticket, joinedAt, () => released)
    const admittedAt = now()
    io.emit({type: 'admitted', waitedMs: admittedAt - joinedAt})
    // The hold ends on release, on cancel or after maxHoldMs; end the other waits with it, or a
    // pending timer would keep this process alive after its place is gone.
    const holding = new AbortController()
    const cancel = () => holding.abort()
    io.signal.addEventListener('abort', cancel, {once: true})
    const expired = await Promise.race([
      io.released.then(() => false),
      sleep(req.maxHoldMs, holding.signal).then(() => !holding.signal.aborted),
    ])
    holding.abort()
    io.signal.removeEventListener('abort', cancel)
    io.signal.throwIfAborted()
    if (expired) io.emit({type: 'expired', heldMs: now() - admittedAt})
    return {waitedMs: admittedAt - joinedAt, heldMs: now() - admittedAt, outcome: expired ? 'expired' : 'released'}
  } finally {
    // Leave even when cancelled: a fresh signal, so the lock can still be taken.
    await io.store.update((state) => ({state: leave(state, ticket), value: undefined}), AbortSignal.timeout(30_000))
  }
}

async function waitForTurn(req: AdmitRequest, io: AdmitIO, ticket: number, joinedAt: number, released: () => boolean): Promise<void> {
  const now = io.now ?? Date.now
  let last: Position | undefined
  let lastReport = 0
  for (;;) {
    io.signal.throwIfAborted()
    if (released()) throw new ShienError('The push stopped while waiting for the blade.', {code: 'PUSH_LEFT_QUEUE', exit: 'cancelled'})
    // A look without the lock first: only a helper that may go next, or sees a gone one, takes it.
    const seen = await io.store.read()
    let position = positionOf(seen.state, ticket)
    if (!position || seen.stale || (position.ahead === 0 && position.running < req.bound)) {
      const result = await io.store.update((state) => {
        const r = admit(state, ticket, req.bound, now())
        return {state: r.state, value: r.admitted ? 'admitted' as const : positionOf(r.state, ticket)}
      }, io.signal)
      if (result === 'admitted') return
      position = result
    }
    if (!position) {
      throw new ShienError('The blade\'s push queue lost this push\'s place (it was reset).', {code: 'PUSH_QUEUE_RESET', exit: 'remote', suggestions: ['Push again.']})
    }
    const t = now()
    if (!last || last.ahead !== position.ahead || last.running !== position.running || t - lastReport >= 5000) {
      io.emit({type: 'waiting', ahead: position.ahead, running: position.running, bound: req.bound, elapsedMs: t - joinedAt})
      last = position
      lastReport = t
    }
    await sleep(io.pollMs ?? 500, io.signal)
  }
}
