import {describe, expect, it} from 'vitest'

import {parseAdmitArgs} from '../../../src/admission/admit-command.js'
import {admit, EMPTY_QUEUE, join, leave, parseQueue, placeOf, positionOf, prune, type QueueState} from '../../../src/admission/queue-state.js'
import {defaultConcurrent} from '../../../src/config/blade-config.js'
import {waitingText} from '../../../src/protocol/admission-events.js'

const holder = (pid: number) => ({pid, startTicks: 100 + pid})
const arrive = (state: QueueState, uid: number) => join(state, {uid, step: 'harden', slot: '01', holder: holder(uid), joinedAt: 0})

function queueOf(...uids: number[]): {state: QueueState; tickets: number[]} {
  let state = EMPTY_QUEUE
  const tickets: number[] = []
  for (const uid of uids) {
    const r = arrive(state, uid)
    state = r.state
    tickets.push(r.ticket)
  }
  return {state, tickets}
}

describe('the push queue', () => {
  it('admits up to the bound in order of arrival, never letting a later arrival overtake', () => {
    let {state, tickets: [a, b, c, d]} = queueOf(1, 2, 3, 4)
    expect(admit(state, b, 2, 1).admitted).toBe(false)
    for (const t of [a, b]) state = admit(state, t, 2, 1).state
    expect(positionOf(state, c)).toEqual({ahead: 0, running: 2})
    expect(positionOf(state, d)).toEqual({ahead: 1, running: 2})
    expect(admit(state, c, 2, 1).admitted).toBe(false)
    state = leave(state, a)
    expect(admit(state, d, 2, 1).admitted).toBe(false)
    const next = admit(state, c, 2, 5)
    expect(next.admitted).toBe(true)
    expect(next.state.entries.find((e) => e.ticket === c)).toMatchObject({state: 'running', admittedAt: 5})
  })

  it('finds an account\'s one place and drops entries whose process is gone', () => {
    const {state} = queueOf(1, 2, 3)
    expect(placeOf(state, 2)?.uid).toBe(2)
    expect(placeOf(state, 9)).toBeUndefined()
    const pruned = prune(state, (h) => h.pid !== 2)
    expect(pruned.entries.map((e) => e.uid)).toEqual([1, 3])
    expect(prune(state, () => true)).toBe(state)
  })

  it('reads only a well-formed stored queue', () => {
    const {state} = queueOf(1)
    expect(parseQueue(JSON.stringify(state))).toEqual(state)
    expect(() => parseQueue('{"next":1,"entries":[{"uid":"0"}]}')).toThrow()
    expect(() => parseQueue('{"next":-1,"entries":[]}')).toThrow()
    expect(() => parseQueue(JSON.stringify({...state, entries: [{...state.entries[0], step: 'rm'}]}))).toThrow()
  })

  it('words the wait with counts and elapsed time', () => {
    expect(waitingText({type: 'waiting', ahead: 7, running: 2, bound: 2, elapsedMs: 65_000})).toBe('waiting for the blade: 7 pushes ahead (1m05s)')
    expect(waitingText({type: 'waiting', ahead: 1, running: 2, bound: 2, elapsedMs: 3_000})).toBe('waiting for the blade: 1 push ahead (3s)')
    expect(waitingText({type: 'waiting', ahead: 0, running: 2, bound: 2, elapsedMs: 0})).toBe('waiting for the blade: next, 2 of 2 running (0s)')
  })

  it('takes exactly --step STEP --slot NN', () => {
    expect(parseAdmitArgs(['--slot', '02', '--step', 'convert'])).toEqual({step: 'convert', slot: '02'})
    for (const argv of [[], ['--step', 'harden'], ['--step', 'x', '--slot', '01'], ['--step', 'harden', '--step', 'harden'], ['--step', 'harden', '--slot', '01', '--slot']]) {
      expect(() => parseAdmitArgs(argv), argv.join(' ')).toThrow()
    }
    expect(() => parseAdmitArgs(['--step', 'harden', '--slot', '../1'])).toThrow()
  })
})

describe('push.concurrent by default', () => {
  it('is one per core, within a fifth of the memory, and at least one', () => {
    expect(defaultConcurrent(24 * 1024, 2, 800)).toBe(2)
    expect(defaultConcurrent(256 * 1024, 32, 800)).toBe(32)
    expect(defaultConcurrent(8 * 1024, 16, 800)).toBe(2)
    expect(defaultConcurrent(1024, 4, 800)).toBe(1)
  })
})

describe('the push settings of /etc/shien/config.json', () => {
  it('fills defaults and refuses values that would lift a bound', async () => {
    const {mkdtemp, rm, writeFile} = await import('node:fs/promises')
    const {tmpdir} = await import('node:os')
    const {join: joinPath} = await import('node:path')
    const {pushSettings, DEFAULT_APPLIANCE_MEM_MIB} = await import('../../../src/config/blade-config.js')
    const {loadTrustedConfig} = await import('../../../src/privileged/trusted-config.js')
    expect(pushSettings({})).toMatchObject({applianceMemMiB: DEFAULT_APPLIANCE_MEM_MIB, convertCache: 'none'})
    expect(pushSettings({push: {concurrent: 5}}).concurrent).toBe(5)
    const dir = await mkdtemp(joinPath(tmpdir(), 'shien-push-config-'))
    try {
      const path = joinPath(dir, 'config.json')
      for (const [push, message] of [[{concurrent: 0}, /push.concurrent/], [{applianceMemMiB: 128}, /applianceMemMiB/], [{convertCache: 'unsafe'}, /convertCache/], [{maxHoldMinutes: 0.5}, /maxHoldMinutes/], [{reserveGiB: -1}, /reserveGiB/], [{reserveGiB: '10'}, /reserveGiB/]] as const) {
        await writeFile(path, JSON.stringify({push}), {mode: 0o644})
        expect(() => loadTrustedConfig(path)).toThrow(message)
      }
      await writeFile(path, JSON.stringify({push: {concurrent: 3, applianceMemMiB: 512}}), {mode: 0o644})
      expect(pushSettings(loadTrustedConfig(path))).toMatchObject({concurrent: 3, applianceMemMiB: 512})
    } finally {
      await rm(dir, {recursive: true, force: true})
    }
  })
})

describe('the storage reserve an upload leaves free', () => {
  it('is 5% of the storage, at most 20 GiB, unless push.reserveGiB says', async () => {
    const {storageReserveBytes} = await import('../../../src/config/blade-config.js')
    const GiB = 2 ** 30
    expect(storageReserveBytes({}, 100 * GiB)).toBe(5 * GiB)
    expect(storageReserveBytes({}, 10 * 1024 * GiB)).toBe(20 * GiB)
    expect(storageReserveBytes({reserveGiB: 0}, 100 * GiB)).toBe(0)
    expect(storageReserveBytes({reserveGiB: 50}, 100 * GiB)).toBe(50 * GiB)
  })
})
