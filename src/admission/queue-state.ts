/**
 * The push queue as data, and every decision on it, free of side effects: who may join, who is
 * admitted next, how many are ahead. queue-store.ts keeps it in a root-only file; the helper
 * (admit.ts) applies these functions under the queue's lock.
 */
import {HEAVY_STEPS, type HeavyStep} from '../protocol/admission-events.js'

export {HEAVY_STEPS, type HeavyStep}

/** The process holding a place: its pid and its start time (so a reused pid is not taken for it). */
export interface Holder {
  pid: number
  /** Field 22 of /proc/PID/stat: clock ticks after boot. */
  startTicks: number
}

export interface QueueEntry {
  /** Order of arrival; lower goes first. */
  ticket: number
  uid: number
  step: HeavyStep
  slot: string
  holder: Holder
  state: 'waiting' | 'running'
  /** When it joined, and when it was admitted (ms since the epoch). */
  joinedAt: number
  admittedAt?: number
}

export interface QueueState {
  next: number
  entries: QueueEntry[]
}

export const EMPTY_QUEUE: QueueState = {next: 1, entries: []}

/** Where one entry stands: how many wait ahead of it, and how many steps run. */
export interface Position {
  ahead: number
  running: number
}

/** The queue without the entries whose process is gone. */
export function prune(state: QueueState, alive: (holder: Holder) => boolean): QueueState {
  const entries = state.entries.filter((e) => alive(e.holder))
  return entries.length === state.entries.length ? state : {...state, entries}
}

/** The live entry of an account, if it has one: an account holds at most one place. */
export function placeOf(state: QueueState, uid: number): QueueEntry | undefined {
  return state.entries.find((e) => e.uid === uid)
}

/** Adds a waiting entry at the end; the caller checked placeOf first. */
export function join(state: QueueState, entry: Omit<QueueEntry, 'ticket' | 'state'>): {state: QueueState; ticket: number} {
  const ticket = state.next
  return {state: {next: ticket + 1, entries: [...state.entries, {...entry, ticket, state: 'waiting'}]}, ticket}
}

export function positionOf(state: QueueState, ticket: number): Position | undefined {
  const me = state.entries.find((e) => e.ticket === ticket)
  if (!me) return undefined
  return {
    ahead: me.state === 'running' ? 0 : state.entries.filter((e) => e.state === 'waiting' && e.ticket < ticket).length,
    running: state.entries.filter((e) => e.state === 'running').length,
  }
}

/**
 * Admits the entry when it is first in line and fewer than `bound` steps run: first come,
 * first served, so an entry never overtakes one that arrived before it.
 */
export function admit(state: QueueState, ticket: number, bound: number, now: number): {state: QueueState; admitted: boolean} {
  const me = state.entries.find((e) => e.ticket === ticket)
  if (!me) return {state, admitted: false}
  if (me.state === 'running') return {state, admitted: true}
  const position = positionOf(state, ticket)!
  if (position.ahead > 0 || position.running >= bound) return {state, admitted: false}
  const entries = state.entries.map((e) => (e.ticket === ticket ? {...e, state: 'running' as const, admittedAt: now} : e))
  return {state: {...state, entries}, admitted: true}
}

export function leave(state: QueueState, ticket: number): QueueState {
  return {...state, entries: state.entries.filter((e) => e.ticket !== ticket)}
}

/** Reads a stored queue, refusing anything that is not one (the file is root's, but be strict). */
export function parseQueue(text: string): QueueState {
  const raw = JSON.parse(text) as Partial<QueueState>
  const int = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0
  if (!int(raw.next) || !Array.isArray(raw.entries)) throw new Error('not a push queue')
  for (const e of raw.entries as Partial<QueueEntry>[]) {
    const ok = int(e.ticket) && int(e.uid) && int(e.joinedAt) && int(e.holder?.pid) && int(e.holder?.startTicks)
      && HEAVY_STEPS.includes(e.step as HeavyStep) && (e.state === 'waiting' || e.state === 'running') && typeof e.slot === 'string'
    if (!ok) throw new Error('not a push queue entry')
  }
  return raw as QueueState
}
