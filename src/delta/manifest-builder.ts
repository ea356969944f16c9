import {createHash} from 'node:crypto'
import type {Readable} from 'node:stream'

import {BLOCK_SIZE, BlockManifest, MAX_VIRTUAL_SIZE, blockCountOf, blockLengthOf} from './manifest.js'

/** What the builder made of one block. */
export interface HashedBlock {
  index: number
  /** Bytes of the virtual disk the block covers: BLOCK_SIZE, or less for the last block. */
  length: number
  /** Every byte is zero. */
  zero: boolean
  /** sha256 of the block's bytes; absent for a zero block. */
  hash?: Buffer
}

/**
 * Builds a manifest from the blocks of a virtual disk, in order. Whether a block is zero is
 * decided by its bytes, not by how an image stores it, so a qcow2 and a VMDK of the same disk
 * give the same manifest. A zero block costs no hashing: its hash is a constant. Memory: 33
 * bytes per block, nothing per byte.
 */
export class ManifestBuilder {
  readonly blockCount: number
  private readonly zero: Uint8Array
  private readonly hashes: Buffer
  private next = 0

  constructor(readonly virtualSize: number) {
    if (!Number.isSafeInteger(virtualSize) || virtualSize <= 0 || virtualSize > MAX_VIRTUAL_SIZE || virtualSize % 512 !== 0) {
      throw new RangeError(`A virtual disk of ${virtualSize} bytes cannot have a manifest (a positive multiple of 512 up to 2 TiB).`)
    }
    this.blockCount = blockCountOf(virtualSize)
    this.zero = new Uint8Array(this.blockCount)
    this.hashes = Buffer.alloc(this.blockCount * 32)
  }

  /** The index of the block the builder expects next. */
  get nextIndex(): number {
    return this.next
  }

  /** Adds the next block from its bytes (exactly the block's length). */
  add(bytes: Buffer): HashedBlock {
    const index = this.take(bytes.length)
    if (isAllZero(bytes)) {
      this.zero[index] = 1
      return {index, length: bytes.length, zero: true}
    }
    const hash = createHash('sha256').update(bytes).digest()
    hash.copy(this.hashes, index * 32)
    return {index, length: bytes.length, zero: false, hash}
  }

  /** Adds the next block as known to be all zero, without its bytes. */
  addZero(): HashedBlock {
    const index = this.take(blockLengthOf(this.virtualSize, this.next))
    const length = blockLengthOf(this.virtualSize, index)
    this.zero[index] = 1
    return {index, length, zero: true}
  }

  /** The manifest, once every block was added. */
  finish(): BlockManifest {
    if (this.next !== this.blockCount) {
      throw new Error(`The manifest has ${this.next} of ${this.blockCount} blocks; the disk ended early.`)
    }
    return new BlockManifest(this.virtualSize, this.zero, this.hashes)
  }

  private take(length: number): number {
    if (this.next >= this.blockCount) throw new RangeError(`The disk has ${this.blockCount} blocks; no more can be added.`)
    const want = blockLengthOf(this.virtualSize, this.next)
    if (length !== want) throw new RangeError(`Block ${this.next} must be ${want} bytes, not ${length}.`)
    return this.next++
  }
}

/** True when every byte is zero; compares 8 bytes at a time where it can. */
export function isAllZero(buf: Buffer): boolean {
  const words = buf.length >>> 3
  if (words > 0 && buf.byteOffset % 8 === 0) {
    const view = new BigUint64Array(buf.buffer, buf.byteOffset, words)
    for (let i = 0; i < words; i++) if (view[i] !== 0n) return false
    for (let i = words * 8; i < buf.length; i++) if (buf[i] !== 0) return false
    return true
  }
  for (let i = 0; i < buf.length; i++) if (buf[i] !== 0) return false
  return true
}

/**
 * The manifest of a raw disk read from a stream (a raw image, or `qemu-img convert -O raw`'s
 * output): exactly `virtualSize` bytes, cut into blocks as they come.
 */
export async function manifestOfRawStream(stream: Readable, virtualSize: number): Promise<BlockManifest> {
  const builder = new ManifestBuilder(virtualSize)
  const pending = new BlockCutter(builder)
  for await (const chunk of stream) pending.push(chunk as Buffer)
  return pending.end()
}

/** Cuts a byte stream into the builder's blocks, keeping at most one block buffered. */
export class BlockCutter {
  private readonly block = Buffer.alloc(BLOCK_SIZE)
  private filled = 0

  constructor(private readonly builder: ManifestBuilder) {}

  push(chunk: Buffer): HashedBlock[] {
    const done: HashedBlock[] = []
    let at = 0
    while (at < chunk.length) {
      if (this.builder.nextIndex >= this.builder.blockCount) {
        throw new RangeError(`The disk has ${this.builder.virtualSize} bytes; more came.`)
      }
      const want = blockLengthOf(this.builder.virtualSize, this.builder.nextIndex)
      const n = Math.min(want - this.filled, chunk.length - at)
      chunk.copy(this.block, this.filled, at, at + n)
      this.filled += n
      at += n
      if (this.filled === want) {
        done.push(this.builder.add(this.block.subarray(0, want)))
        this.filled = 0
      }
    }
    return done
  }

  end(): BlockManifest {
    if (this.filled !== 0) throw new RangeError(`The disk ended inside block ${this.builder.nextIndex}.`)
    return this.builder.finish()
  }
}
