import {describe, expect, it} from 'vitest'

import {holdPlace, type AdmitRequest} from '../../../src/admission/admit.js'
import {EMPTY_QUEUE, join, type QueueState} from '../../../src/admission/queue-state.js'
import type {QueueStore} from '../../../src/admission/queue-store.js'
import type {AdmissionEvent} from '../../../src/protocol/admission-events.js'

/** The queue in memory: every holder counts as alive unless `gone` names its pid. */
function memoryStore(initial: QueueState = EMPTY_QUEUE, gone = new Set<number>()) {
  let state = initial
  const live = (s: QueueState) => ({...s, entries: s.entries.filter((e) => !gone.has(e.holder.pid))})
  const store: QueueStore = {
    read: async () => ({state: live(state), stale: live(state).entries.length !== state.entries.length}),
    update: async (change) => {
      const r = change(live(state))
      state = r.state
      return r.value
    },
  }
  return {store, get: () => state, gone}
}

const request: AdmitRequest = {uid: 1000, step: 'harden', slot: '01', bound: 1, maxHoldMs: 60_000}
const other = (uid: number, pid: number) => ({uid, step: 'convert' as const, slot: '01', holder: {pid, startTicks: 1}, joinedAt: 0})

describe('holdPlace', () => {
  it('waits behind a running step, reports the wait, holds until released, then leaves', async () => {
    const running = join(EMPTY_QUEUE, other(2000, 999_001))
    const q = memoryStore({...running.state, entries: running.state.entries.map((e) => ({...e, state: 'running' as const}))})
    const events: AdmissionEvent[] = []
    let release!: () => void
    const released = new Promise<void>((resolve) => (release = resolve))
    const held = holdPlace(request, {store: q.store, emit: (e) => events.push(e), released, signal: new AbortController().signal, pollMs: 10})
    await new Promise((r) => setTimeout(r, 50))
    expect(events).toEqual([expect.objectContaining({type: 'waiting', ahead: 0, running: 1, bound: 1})])
    q.gone.add(999_001)
    while (!events.some((e) => e.type === 'admitted')) await new Promise((r) => setTimeout(r, 10))
    expect(q.get().entries).toEqual([expect.objectContaining({uid: 1000, state: 'running'})])
    release()
    expect(await held).toMatchObject({outcome: 'released'})
    expect(q.get().entries).toEqual([])
  })

  it('refuses a second place for the account', async () => {
    const q = memoryStore(join(EMPTY_QUEUE, other(1000, 999_002)).state)
    const error = await holdPlace(request, {store: q.store, emit: () => undefined, released: new Promise(() => undefined), signal: new AbortController().signal}).catch((e: unknown) => e)
    expect(error).toMatchObject({code: 'PUSH_ALREADY_QUEUED', exitCode: 6})
    expect(q.get().entries).toHaveLength(1)
  })

  it('gives the place up after maxHoldMs, and on cancel', async () => {
    const q = memoryStore()
    const events: AdmissionEvent[] = []
    const never = new Promise<void>(() => undefined)
    expect(await holdPlace({...request, maxHoldMs: 30}, {store: q.store, emit: (e) => events.push(e), released: never, signal: new AbortController().signal})).toMatchObject({outcome: 'expired'})
    expect(events.map((e) => e.type)).toEqual(['admitted', 'expired'])
    expect(q.get().entries).toEqual([])
    const controller = new AbortController()
    const held = holdPlace(request, {store: q.store, emit: () => undefined, released: never, signal: controller.signal})
    await new Promise((r) => setTimeout(r, 20))
    controller.abort()
    await expect(held).rejects.toThrow()
    expect(q.get().entries).toEqual([])
  })
})
