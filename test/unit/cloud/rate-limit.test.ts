import {describe, expect, it} from 'vitest'

import {type Clock, RateLimiter} from '../../../src/cloud/rate-limit.js'

/** A clock that only moves when someone sleeps. */
function fakeClock(): Clock & {t: number} {
  const clock = {
    t: 0,
    now: () => clock.t,
    sleep: async (ms: number, signal?: AbortSignal) => {
      signal?.throwIfAborted()
      clock.t += ms
    },
  }
  return clock
}

describe('RateLimiter', () => {
  it('lets at most 5 requests start in any second', async () => {
    const clock = fakeClock()
    const limiter = new RateLimiter(5, 1000, clock)
    const starts: number[] = []
    for (let i = 0; i < 17; i++) {
      await limiter.acquire()
      starts.push(clock.now())
    }
    expect(starts.slice(0, 5)).toEqual([0, 0, 0, 0, 0])
    for (let i = 5; i < starts.length; i++) expect(starts[i] - starts[i - 5]).toBeGreaterThanOrEqual(1000)
    // ... and no slower than that: 17 requests take just over 3 s, not more.
    expect(starts.at(-1)).toBeLessThan(3100)
  })

  it('serves waiters in order, and a cancelled one does not block the others', async () => {
    const clock = fakeClock()
    const limiter = new RateLimiter(1, 1000, clock)
    await limiter.acquire()
    const cancelled = AbortSignal.abort(new Error('gone'))
    const order: string[] = []
    const a = limiter.acquire(cancelled).then(() => order.push('a'), () => order.push('a cancelled'))
    const b = limiter.acquire().then(() => order.push('b'))
    await Promise.all([a, b])
    expect(order).toEqual(['a cancelled', 'b'])
  })
})
