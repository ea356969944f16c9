import type {Readable} from 'node:stream'

/**
 * Re-slices a byte stream into pieces of at most `size` bytes without copying, and lets a
 * caller take an exact number of bytes first (the prefix checked before a resume).
 */
export class ChunkReader {
  private readonly iterator: AsyncIterator<Buffer>
  private pending: Buffer | undefined

  constructor(stream: Readable) {
    this.iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>
  }

  /** The next piece of at most `max` bytes, or undefined at the end of the stream. */
  async next(max: number): Promise<Buffer | undefined> {
    if (!this.pending || this.pending.length === 0) {
      const {value, done} = await this.iterator.next()
      if (done) return undefined
      this.pending = value
    }
    const piece = this.pending!.subarray(0, max)
    this.pending = this.pending!.subarray(piece.length)
    return piece
  }

  /** Calls `each` on exactly `length` bytes (fewer only if the stream ends first). */
  async consume(length: number, each: (piece: Buffer) => void): Promise<number> {
    let taken = 0
    while (taken < length) {
      const piece = await this.next(Math.min(length - taken, 1 << 20))
      if (!piece) break
      each(piece)
      taken += piece.length
    }
    return taken
  }

  /** Up to `length` bytes as one buffer (fewer only at the end of the stream). */
  async readExact(length: number): Promise<Buffer> {
    const parts: Buffer[] = []
    await this.consume(length, (piece) => parts.push(piece))
    return parts.length === 1 ? parts[0] : Buffer.concat(parts)
  }

  /** Puts bytes back in front of the stream: the next read returns them first. */
  unshift(piece: Buffer): void {
    this.pending = this.pending && this.pending.length > 0 ? Buffer.concat([piece, this.pending]) : piece
  }

  async close(): Promise<void> {
    await this.iterator.return?.()
  }
}
