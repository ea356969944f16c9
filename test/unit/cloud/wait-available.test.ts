import {describe, expect, it} from 'vitest'

import type {ArchiveApi} from '../../../src/cloud/archive-api.js'
import type {Clock} from '../../../src/cloud/rate-limit.js'
import {waitAvailable} from '../../../src/cloud/wait-available.js'

describe('waitAvailable', () => {
  const api = (states: string[]) => {
    const gets: string[] = []
    const fake = {zone: 'is1a', get: async (id: string) => (gets.push(id), {id, name: 'n', availability: states.shift() ?? states.at(-1) ?? 'migrating'})}
    return {api: fake as unknown as ArchiveApi, gets}
  }
  const clock = (): Clock & {t: number} => {
    const c = {t: 0, now: () => c.t, sleep: async (ms: number) => void (c.t += ms)}
    return c
  }

  it('ends at "failed" at once instead of waiting for the timeout', async () => {
    const {api: a, gets} = api(['migrating', 'failed'])
    const c = clock()
    await expect(waitAvailable(a, '7', {pollMs: 5000, timeoutMs: 3_600_000, clock: c})).rejects.toMatchObject({code: 'CLOUD_ARCHIVE_FAILED'})
    expect(gets).toHaveLength(2)
    expect(c.t).toBe(5000)
  })

  it('polls every pollMs and gives up at the timeout', async () => {
    const {api: a, gets} = api(['migrating'])
    const c = clock()
    await expect(waitAvailable(a, '7', {pollMs: 5000, timeoutMs: 60_000, clock: c})).rejects.toMatchObject({code: 'CLOUD_WAIT_TIMEOUT', message: 'Archive 7 was still "migrating" after 60 s.'})
    // At 0 s, 5 s, ... 60 s: 13 looks, then no time for another.
    expect(gets).toHaveLength(13)
  })
})
