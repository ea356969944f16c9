import {describe, expect, it} from 'vitest'

import type {PipelineEvent} from '../../../src/pipeline/events.js'
import {type Outcome, runStages, type Stage} from '../../../src/pipeline/runner.js'
import type {StageId} from '../../../src/push/context.js'

function recorder(ids: StageId[], failAt?: StageId, abortAt?: {id: StageId; controller: AbortController}) {
  const log: string[] = []
  const stages: Stage<object>[] = ids.map((id) => ({
    id,
    async run() {
      log.push(`run ${id}`)
      if (abortAt?.id === id) abortAt.controller.abort(new Error('interrupted'))
      if (failAt === id) throw new Error(`${id} broke`)
    },
    async cleanup(_ctx: object, outcome: Outcome) {
      log.push(`cleanup ${id} ${outcome}`)
    },
  }))
  return {log, stages}
}

describe('runStages', () => {
  it('runs stages in order, reports timings and events, then cleans up in reverse with ok', async () => {
    const {log, stages} = recorder(['package', 'upload', 'convert'])
    const events: PipelineEvent[] = []
    const timings = await runStages(stages, {}, {signal: new AbortController().signal, onEvent: (e) => events.push(e)})
    expect(timings.map((t) => t.stage)).toEqual(['package', 'upload', 'convert'])
    expect(log).toEqual(['run package', 'run upload', 'run convert', 'cleanup convert ok', 'cleanup upload ok', 'cleanup package ok'])
    expect(events.filter((e) => e.type === 'stage:start').length).toBe(3)
  })

  it('stops at a failing stage and cleans up only what started, with failed', async () => {
    const {log, stages} = recorder(['package', 'upload', 'convert', 'harden'], 'convert')
    await expect(runStages(stages, {}, {signal: new AbortController().signal})).rejects.toThrow('convert broke')
    expect(log).toEqual(['run package', 'run upload', 'run convert', 'cleanup convert failed', 'cleanup upload failed', 'cleanup package failed'])
  })

  it('stops between stages when cancelled, with cancelled', async () => {
    const controller = new AbortController()
    const {log, stages} = recorder(['package', 'upload', 'convert'], undefined, {id: 'upload', controller})
    await expect(runStages(stages, {}, {signal: controller.signal})).rejects.toThrow('interrupted')
    expect(log).toEqual(['run package', 'run upload', 'cleanup upload cancelled', 'cleanup package cancelled'])
  })

  it('keeps the original error when a cleanup fails too', async () => {
    const stages: Stage<object>[] = [
      {id: 'package', run: async () => {}, cleanup: async () => Promise.reject(new Error('cleanup broke'))},
      {id: 'upload', run: async () => Promise.reject(new Error('upload broke'))},
    ]
    await expect(runStages(stages, {}, {signal: new AbortController().signal})).rejects.toThrow('upload broke')
  })
})
