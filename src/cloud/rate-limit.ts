/** Waits `ms`, or rejects with the signal's reason when it is aborted first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal?.reason)
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, {once: true})
  })
}

export interface Clock {
  now(): number
  sleep(ms: number, signal?: AbortSignal): Promise<void>
}

export const realClock: Clock = {now: () => performance.now(), sleep}

/**
 * At most `limit` starts in any window of `windowMs` (Sakura Cloud allows 5 API requests a
 * second per key). Callers queue in order; retries count like any other request.
 */
export class RateLimiter {
  private readonly starts: number[] = []
  private queue: Promise<void> = Promise.resolve()

  constructor(
    private readonly limit = 5,
    private readonly windowMs = 1000,
    private readonly clock: Clock = realClock,
  ) {}

  /** Resolves when one more request may start, and counts it as started. */
  acquire(signal?: AbortSignal): Promise<void> {
    const turn = this.queue.then(() => this.waitForSlot(signal))
    // A cancelled waiter must not block the ones behind it.
    this.queue = turn.catch(() => undefined)
    return turn
  }

  private async waitForSlot(signal?: AbortSignal): Promise<void> {
    if (this.starts.length >= this.limit) {
      const oldest = this.starts[this.starts.length - this.limit]
      // Timers may fire a millisecond early against performance.now(): keep a little margin.
      const wait = oldest + this.windowMs + 2 - this.clock.now()
      if (wait > 0) await this.clock.sleep(wait, signal)
    }
    signal?.throwIfAborted()
    this.starts.push(this.clock.now())
    if (this.starts.length > this.limit) this.starts.splice(0, this.starts.length - this.limit)
  }
}
