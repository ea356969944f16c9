/**
 * `shien admin pushes`: the blade's push queue as an admin sees it (docs/blade-capacity.md): the
 * heavy steps running and waiting, whose, for which slot, and for how long. Read as root, under
 * the queue's lock, with the places of dead holders dropped as every helper drops them.
 */
import {pushSettings} from '../config/blade-config.js'
import {ShienError} from '../errors.js'
import type {QueueState} from '../admission/queue-state.js'
import {openQueueStore} from '../admission/queue-store.js'
import {getentLookup, type AccountLookup} from '../privileged/caller.js'
import {loadTrustedConfig} from '../privileged/trusted-config.js'
import {formatElapsed, type HeavyStep} from '../protocol/admission-events.js'
import {renderTable} from '../text-table.js'

/** One place in the queue. */
export interface PushPlace {
  state: 'running' | 'waiting'
  /** For a waiting step, its place in line: 1 goes next. */
  position?: number
  /** The account's name, or `uid N` when the passwd database does not know the uid. */
  account: string
  uid: number
  slot: string
  step: HeavyStep
  /** The helper holding the place (`ie-virsh admit`, as root). */
  pid: number
  joinedAt: string
  admittedAt?: string
  /** Running: since it was admitted; waiting: since it joined. */
  elapsedMs: number
  /** Running: how long it waited before that. */
  waitedMs?: number
}

export interface PushesReport {
  /** push.concurrent: heavy steps at once on this blade. */
  bound: number
  running: number
  waiting: number
  /** Running first, then waiting in the order they go. */
  places: PushPlace[]
}

export interface PushesInputs {
  configPath: string
  uid: number
  signal: AbortSignal
  lookupAccount?: AccountLookup
  now?: () => number
}

/** Checks it runs as root, then reads the queue under its lock (dead holders dropped and written out). */
export async function listPushes(input: PushesInputs): Promise<PushesReport> {
  if (input.uid !== 0) {
    throw new ShienError('shien admin pushes reads the blade\'s push queue, which only root may read (it names students).', {
      code: 'NOT_ROOT',
      exit: 'refused',
      suggestions: ['On the blade: sudo shien admin pushes'],
    })
  }
  const config = loadTrustedConfig(input.configPath)
  const store = await openQueueStore(config.runDir)
  const state = await store.update((s) => ({state: s, value: s}), input.signal)
  const lookup = input.lookupAccount ?? getentLookup
  const names = new Map<number, string>()
  for (const uid of new Set(state.entries.map((e) => e.uid))) names.set(uid, (await lookup(uid).catch(() => undefined)) ?? `uid ${uid}`)
  return pushesReport(state, pushSettings(config).concurrent, names, (input.now ?? Date.now)())
}

/** The queue as the report lists it, at time `now`. */
export function pushesReport(state: QueueState, bound: number, names: ReadonlyMap<number, string>, now: number): PushesReport {
  const ordered = [...state.entries].sort((a, b) => (a.state === b.state ? a.ticket - b.ticket : a.state === 'running' ? -1 : 1))
  let position = 0
  const places = ordered.map((e): PushPlace => {
    const base = {account: names.get(e.uid) ?? `uid ${e.uid}`, uid: e.uid, slot: e.slot, step: e.step, pid: e.holder.pid, joinedAt: new Date(e.joinedAt).toISOString()}
    if (e.state === 'waiting') return {state: 'waiting', position: ++position, ...base, elapsedMs: Math.max(0, now - e.joinedAt)}
    const admittedAt = e.admittedAt ?? e.joinedAt
    return {state: 'running', ...base, admittedAt: new Date(admittedAt).toISOString(), elapsedMs: Math.max(0, now - admittedAt), waitedMs: admittedAt - e.joinedAt}
  })
  return {bound, running: places.length - position, waiting: position, places}
}

/** The report as a table for people. */
export function describePushes(report: PushesReport): string {
  const head = `Pushes on this blade: ${report.running} of ${report.bound} running (push.concurrent), ${report.waiting} waiting.`
  if (report.places.length === 0) return `${head}\nNo heavy step is running or waiting.`
  const table = renderTable(
    ['STATE', 'ACCOUNT', 'SLOT', 'STEP', 'TIME'],
    report.places.map((p) => [
      p.state === 'waiting' ? `waiting ${p.position}` : 'running',
      p.account,
      p.slot,
      p.step,
      formatElapsed(p.elapsedMs) + (p.waitedMs ? ` (waited ${formatElapsed(p.waitedMs)})` : ''),
    ]),
  )
  return `${head}\n${table}`
}
