import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {describePushes, listPushes, pushesReport} from '../../../src/admin/pushes.js'
import type {QueueEntry, QueueState} from '../../../src/admission/queue-state.js'
import {startTicks} from '../../../src/admission/queue-store.js'

const T0 = Date.parse('2026-12-06T10:00:00Z')
const me = {pid: process.pid, startTicks: startTicks(process.pid)!}
const entry = (ticket: number, uid: number, state: QueueEntry['state'], o: Partial<QueueEntry> = {}): QueueEntry =>
  ({ticket, uid, step: 'harden', slot: '01', holder: me, state, joinedAt: T0 + ticket * 1000, ...o})

const QUEUE: QueueState = {
  next: 6,
  entries: [
    entry(4, 1004, 'waiting', {step: 'convert', slot: '02'}),
    entry(1, 1001, 'running', {admittedAt: T0 + 31_000}),
    entry(5, 1005, 'waiting', {step: 'apply-delta', slot: '03'}),
    entry(2, 1002, 'running', {step: 'apply-delta', admittedAt: T0 + 2000}),
  ],
}
const NAMES = new Map([[1001, 'e195701'], [1002, 'k198584'], [1004, 'e205710'], [1005, 'uid 1005']])

describe('shien admin pushes', () => {
  it('lists the running steps, then the waiting ones in the order they go, with elapsed times', () => {
    const report = pushesReport(QUEUE, 2, NAMES, T0 + 96_000)
    expect(report).toMatchObject({bound: 2, running: 2, waiting: 2})
    expect(report.places.map((p) => [p.state, p.position, p.account, p.slot, p.step, p.elapsedMs, p.waitedMs])).toEqual([
      ['running', undefined, 'e195701', '01', 'harden', 65_000, 30_000],
      ['running', undefined, 'k198584', '01', 'apply-delta', 94_000, 0],
      ['waiting', 1, 'e205710', '02', 'convert', 92_000, undefined],
      ['waiting', 2, 'uid 1005', '03', 'apply-delta', 91_000, undefined],
    ])
    expect(report.places[0]).toMatchObject({uid: 1001, pid: process.pid, joinedAt: '2026-12-06T10:00:01.000Z', admittedAt: '2026-12-06T10:00:31.000Z'})
  })

  it('prints a table for people', () => {
    expect(describePushes(pushesReport(QUEUE, 2, NAMES, T0 + 96_000))).toBe([
      'Pushes on this blade: 2 of 2 running (push.concurrent), 2 waiting.',
      'STATE      ACCOUNT   SLOT  STEP         TIME',
      'running    e195701   01    harden       1m05s (waited 30s)',
      'running    k198584   01    apply-delta  1m34s',
      'waiting 1  e205710   02    convert      1m32s',
      'waiting 2  uid 1005  03    apply-delta  1m31s',
    ].join('\n'))
    expect(describePushes(pushesReport({next: 1, entries: []}, 4, NAMES, T0))).toBe(
      'Pushes on this blade: 0 of 4 running (push.concurrent), 0 waiting.\nNo heavy step is running or waiting.',
    )
  })

  describe('reading the blade\'s queue', () => {
    let root: string
    let config: string
    beforeEach(async () => {
      root = await mkdtemp(join(tmpdir(), 'shien-pushes-'))
      config = join(root, 'config.json')
      await writeFile(config, JSON.stringify({storageRoot: root, runDir: join(root, 'run'), push: {concurrent: 3}}), {mode: 0o644})
      await mkdir(join(root, 'run', 'push-queue'), {recursive: true, mode: 0o700})
    })
    afterEach(() => rm(root, {recursive: true, force: true}))

    it('as root, under the lock, dropping (and writing out) the places whose process is gone', async () => {
      const gone = entry(3, 1003, 'running', {holder: {pid: me.pid, startTicks: me.startTicks + 1}, admittedAt: T0})
      const file = join(root, 'run', 'push-queue', 'queue.json')
      await writeFile(file, JSON.stringify({...QUEUE, entries: [...QUEUE.entries, gone]}), {mode: 0o600})
      const report = await listPushes({configPath: config, uid: 0, signal: new AbortController().signal, lookupAccount: async (uid) => NAMES.get(uid), now: () => T0 + 96_000})
      expect(report).toMatchObject({bound: 3, running: 2, waiting: 2})
      expect(report.places.map((p) => p.account)).toEqual(['e195701', 'k198584', 'e205710', 'uid 1005'])
      expect((JSON.parse(await readFile(file, 'utf8')) as QueueState).entries.map((e) => e.ticket).sort()).toEqual([1, 2, 4, 5])
    })

    it('refuses anyone but root', async () => {
      await expect(listPushes({configPath: config, uid: 1001, signal: new AbortController().signal})).rejects.toMatchObject({code: 'NOT_ROOT', exitCode: 6})
    })
  })
})
