import {describe, expect, it} from 'vitest'

import {ShienError} from '../../../src/errors.js'
import type {PushStage} from '../../../src/push/context.js'
import type {PushPlan} from '../../../src/push/plan.js'
import {push} from '../../../src/push/push.js'

const MiB = 2 ** 20
const plan = {slot: '01', name: 'web', target: {user: 'e195701', alias: 'blade'}} as unknown as PushPlan

/** A stage that does nothing. */
const passes = (id: PushStage['id']): PushStage => ({id, run: async () => undefined})

/** A stage that reports `bytes` of `total` uploaded, then is interrupted (Ctrl-C) and fails with what the abort gave it. */
function interrupted(id: PushStage['id'], controller: AbortController, fail: () => unknown, progress?: {bytes: number; total: number}): PushStage {
  return {
    id,
    async run(_ctx, io) {
      if (progress) io.emit({type: 'progress', stage: id, ...progress})
      controller.abort(new Error('interrupted'))
      throw fail()
    },
  }
}

async function cancelledAt(stages: (c: AbortController) => PushStage[]): Promise<ShienError> {
  const controller = new AbortController()
  return push(plan, {signal: controller.signal, confirmHostKey: async () => false, stages: stages(controller)}).then(
    () => expect.unreachable('the push was interrupted'),
    (error: unknown) => error as ShienError,
  )
}

describe('Ctrl-C during a push', () => {
  it('during the upload is CANCELLED (130), naming how much was sent and kept for the resume', async () => {
    const error = await cancelledAt((c) => [passes('connect'), passes('package'), interrupted('upload', c, () => new Error('aborted'), {bytes: 30 * MiB, total: 100 * MiB})])
    expect(error).toMatchObject({code: 'CANCELLED', exitCode: 130})
    expect(error.message).toBe('Interrupted during upload: the 30.0 MiB sent (30%) stay on the blade and are not sent again.')
    expect(error.suggestions).toEqual(['Run the same command again: a push resumes where it stopped.'])
  })

  it('during a blade step says the upload and the slot are kept as they were, whatever the step failed with', async () => {
    const steps = [passes('connect'), passes('package'), passes('upload')]
    const error = await cancelledAt((c) => [...steps, passes('convert'), interrupted('harden', c, () => new ShienError('Interrupted.', {code: 'CANCELLED', exit: 'cancelled'}))])
    expect(error).toMatchObject({code: 'CANCELLED', exitCode: 130})
    expect(error.message).toBe("Interrupted during harden: the whole upload stays on the blade and is not sent again; the slot's image and VM are as they were.")
  })

  it('while vagrant package runs says nothing was sent', async () => {
    const error = await cancelledAt((c) => [passes('connect'), interrupted('package', c, () => new Error('killed'))])
    expect(error.message).toBe('Interrupted during package: nothing was sent, and the VM is as vagrant package left it.')
  })

  it('is CANCELLED even when the connection was torn down with it', async () => {
    const lost = new ShienError('The connection to the blade was lost during the upload, at 40%: run the same command to resume.', {code: 'CONNECTION_LOST', exit: 'connection'})
    const error = await cancelledAt((c) => [passes('connect'), interrupted('upload', c, () => lost, {bytes: 40 * MiB, total: 100 * MiB})])
    expect(error).toMatchObject({code: 'CANCELLED', exitCode: 130, cause: lost})
  })

  it('leaves a failure with no interruption as it was', async () => {
    const failure = new ShienError('no room', {code: 'BLADE_DISK_FULL', exit: 'blade'})
    const error = await cancelledAt(() => [passes('connect'), {id: 'upload', run: async () => Promise.reject(failure)}])
    expect(error).toBe(failure)
  })
})
