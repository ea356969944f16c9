/**
 * Reads exact byte counts from a stream, in order, holding only the chunks not yet consumed
 * (one chunk beyond what was asked). For formats that must be read front to back, like a
 * streamOptimized VMDK inside a tar.
 */
export class ExactReader {
  private readonly chunks: Buffer[] = []
  private buffered = 0
  private ended = false
  private readonly source: AsyncIterator<unknown>
  /** Bytes consumed so far (the offset in the stream of the next byte `read` returns). */
  position = 0

  /** `stream`: a Node Readable, a tar-stream entry, anything that iterates over byte chunks. */
  constructor(stream: AsyncIterable<unknown>) {
    this.source = stream[Symbol.asyncIterator]()
  }

  /** The next `n` bytes, or fewer only when the stream ends first. */
  async readUpTo(n: number): Promise<Buffer> {
    while (this.buffered < n && !this.ended) await this.pull()
    return this.take(Math.min(n, this.buffered))
  }

  /** Discards the next `n` bytes; returns how many there were before the stream ended. */
  async skip(n: number): Promise<number> {
    let left = n
    while (left > 0) {
      if (this.buffered === 0) {
        if (this.ended) break
        await this.pull()
        continue
      }
      const taken = this.take(Math.min(left, this.buffered)).length
      left -= taken
    }
    return n - left
  }

  /** Reads and discards the rest of the stream (so a tar reader can go on to the next entry). */
  async drain(): Promise<void> {
    while (!this.ended) await this.pull()
    this.take(this.buffered)
  }

  private async pull(): Promise<void> {
    const next = await this.source.next()
    if (next.done) {
      this.ended = true
      return
    }
    if (!(next.value instanceof Uint8Array)) throw new TypeError('The stream gave something other than bytes.')
    const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength)
    if (chunk.length === 0) return
    this.chunks.push(chunk)
    this.buffered += chunk.length
  }

  private take(n: number): Buffer {
    this.position += n
    this.buffered -= n
    if (n === 0) return Buffer.alloc(0)
    const first = this.chunks[0]
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift()
      else this.chunks[0] = first.subarray(n)
      return first.subarray(0, n)
    }
    const out = Buffer.allocUnsafe(n)
    let at = 0
    while (at < n) {
      const c = this.chunks[0]
      const k = Math.min(c.length, n - at)
      c.copy(out, at, 0, k)
      at += k
      if (k === c.length) this.chunks.shift()
      else this.chunks[0] = c.subarray(k)
    }
    return out
  }
}
