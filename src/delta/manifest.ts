import {createHash} from 'node:crypto'

import {badInput, type ShienError} from '../errors.js'

/**
 * The block manifest of a virtual disk: one sha256 per 64 KiB block, zero blocks marked as
 * zero, and a hash of the whole virtual disk made from the blocks' hashes. docs/delta.md
 * describes the encoding.
 */

/** Bytes per block: qcow2's default cluster and a VMDK grain are both 64 KiB. */
export const BLOCK_SIZE = 64 * 1024
export const MANIFEST_VERSION = 1
export const MANIFEST_MAGIC = Buffer.from('SHIENBMF', 'latin1')
/** The largest virtual disk a manifest describes: a sparse VMDK's limit, 2 TiB. */
export const MAX_VIRTUAL_SIZE = 2 ** 41

const HASH = 32
const HEADER = 72
const TAG_ZERO = 0
const TAG_DATA = 1

/** How many blocks a virtual disk of this size has (the last one may be partial). */
export function blockCountOf(virtualSize: number): number {
  return Math.ceil(virtualSize / BLOCK_SIZE)
}

/** How many bytes of the virtual disk block `index` covers. */
export function blockLengthOf(virtualSize: number, index: number): number {
  return Math.min(BLOCK_SIZE, virtualSize - index * BLOCK_SIZE)
}

/** sha256 of a zero block of `length` bytes (the full-size one is computed once). */
export function zeroBlockHash(length: number = BLOCK_SIZE): Buffer {
  if (length === BLOCK_SIZE) return (fullZeroHash ??= sha256(Buffer.alloc(BLOCK_SIZE)))
  return sha256(Buffer.alloc(length))
}
let fullZeroHash: Buffer | undefined

function sha256(buf: Buffer): Buffer {
  return createHash('sha256').update(buf).digest()
}

/**
 * A parsed or built manifest. Per block it keeps a zero flag and a 32-byte hash slot (empty
 * for zero blocks): 33 bytes per 64 KiB, 4 MiB for an 8 GiB disk.
 */
export class BlockManifest {
  readonly blockSize = BLOCK_SIZE
  readonly blockCount: number
  /**
   * The hash of the whole virtual disk: sha256 of the sha256 of every block in order, zero
   * blocks included (hashed like any other block), each 32 bytes, nothing between them.
   */
  readonly diskHash: Buffer

  constructor(
    /** Size of the virtual disk in bytes. */
    readonly virtualSize: number,
    private readonly zero: Uint8Array,
    private readonly hashes: Buffer,
  ) {
    this.blockCount = blockCountOf(virtualSize)
    if (zero.length !== this.blockCount || hashes.length !== this.blockCount * HASH) {
      throw new Error(`A manifest of ${virtualSize} bytes needs ${this.blockCount} entries.`)
    }
    const disk = createHash('sha256')
    for (let i = 0; i < this.blockCount; i++) {
      disk.update(this.zero[i] === 1 ? zeroBlockHash(blockLengthOf(virtualSize, i)) : this.hashes.subarray(i * HASH, (i + 1) * HASH))
    }
    this.diskHash = disk.digest()
  }

  /** True when every byte of block `index` is zero. */
  isZero(index: number): boolean {
    return this.zero[this.checkIndex(index)] === 1
  }

  /** The sha256 of block `index`'s bytes, or undefined for a zero block. */
  blockHash(index: number): Buffer | undefined {
    if (this.isZero(index)) return undefined
    return this.hashes.subarray(index * HASH, (index + 1) * HASH)
  }

  /** How many blocks hold data (are not all zero). */
  get dataBlockCount(): number {
    let n = 0
    for (const z of this.zero) n += z === 1 ? 0 : 1
    return n
  }

  private checkIndex(index: number): number {
    if (!Number.isInteger(index) || index < 0 || index >= this.blockCount) {
      throw new RangeError(`Block ${index} is outside a disk of ${this.blockCount} blocks.`)
    }
    return index
  }
}

/** The binary form (docs/delta.md): header, one entry per block, sha256 of all before it. */
export function encodeManifest(m: BlockManifest): Buffer {
  const data = m.dataBlockCount
  const out = Buffer.alloc(HEADER + m.blockCount + data * HASH + HASH)
  MANIFEST_MAGIC.copy(out, 0)
  out.writeUInt32BE(MANIFEST_VERSION, 8)
  out.writeUInt32BE(m.blockSize, 12)
  out.writeBigUInt64BE(BigInt(m.virtualSize), 16)
  out.writeBigUInt64BE(BigInt(m.blockCount), 24)
  out.writeBigUInt64BE(BigInt(data), 32)
  m.diskHash.copy(out, 40)
  let at = HEADER
  for (let i = 0; i < m.blockCount; i++) {
    const hash = m.blockHash(i)
    out[at++] = hash ? TAG_DATA : TAG_ZERO
    if (hash) at += hash.copy(out, at)
  }
  sha256(out.subarray(0, at)).copy(out, at)
  return out
}

/**
 * Parses a manifest and refuses anything that is not exactly a version-1 manifest of 64 KiB
 * blocks whose entries match its virtual size and whose checksum holds (exit 3).
 * `source` names where it came from, for the message.
 */
export function parseManifest(buf: Buffer, source = 'the block manifest'): BlockManifest {
  if (buf.length < HEADER + HASH) {
    throw refuse('MANIFEST_TRUNCATED', source, `it is ${buf.length} bytes, shorter than a manifest's header`)
  }
  if (!buf.subarray(0, 8).equals(MANIFEST_MAGIC)) throw refuse('MANIFEST_CORRUPT', source, 'it does not start with "SHIENBMF"')
  const version = buf.readUInt32BE(8)
  if (version !== MANIFEST_VERSION) {
    throw refuse('MANIFEST_VERSION', source, `it is format version ${version}; this shien reads version ${MANIFEST_VERSION} only`)
  }
  const blockSize = buf.readUInt32BE(12)
  if (blockSize !== BLOCK_SIZE) throw refuse('MANIFEST_BLOCK_SIZE', source, `its blocks are ${blockSize} bytes, not ${BLOCK_SIZE}`)
  const virtualSize = Number(buf.readBigUInt64BE(16))
  if (virtualSize <= 0 || virtualSize > MAX_VIRTUAL_SIZE || virtualSize % 512 !== 0) {
    throw refuse('MANIFEST_CORRUPT', source, `its virtual size ${virtualSize} is not a positive multiple of 512 up to 2 TiB`)
  }
  const count = buf.readBigUInt64BE(24)
  if (count !== BigInt(blockCountOf(virtualSize))) {
    throw refuse('MANIFEST_COUNT', source, `it lists ${count} blocks, but a disk of ${virtualSize} bytes has ${blockCountOf(virtualSize)}`)
  }
  const data = buf.readBigUInt64BE(32)
  if (data > count) throw refuse('MANIFEST_COUNT', source, `it claims ${data} data blocks of ${count}`)
  const expected = HEADER + Number(count) + Number(data) * HASH + HASH
  if (buf.length < expected) throw refuse('MANIFEST_TRUNCATED', source, `it is ${buf.length} bytes, ${expected} expected`)
  if (buf.length > expected) throw refuse('MANIFEST_CORRUPT', source, `it has ${buf.length - expected} bytes after its end`)
  const sum = sha256(buf.subarray(0, expected - HASH))
  if (!sum.equals(buf.subarray(expected - HASH))) throw refuse('MANIFEST_CORRUPT', source, 'its checksum does not match its content')
  return readEntries(buf, virtualSize, Number(data), source)
}

function readEntries(buf: Buffer, virtualSize: number, data: number, source: string): BlockManifest {
  const count = blockCountOf(virtualSize)
  const zero = new Uint8Array(count)
  const hashes = Buffer.alloc(count * HASH)
  let at = HEADER
  let seen = 0
  for (let i = 0; i < count; i++) {
    const tag = buf[at++]
    if (tag === TAG_ZERO) {
      zero[i] = 1
    } else if (tag === TAG_DATA && seen < data) {
      at += buf.copy(hashes, i * HASH, at, at + HASH)
      seen++
    } else {
      throw refuse('MANIFEST_CORRUPT', source, tag === TAG_DATA ? `it has more data blocks than the ${data} its header gives` : `block ${i} has the unknown tag ${tag}`)
    }
  }
  if (seen !== data) throw refuse('MANIFEST_CORRUPT', source, `it has ${seen} data blocks, its header says ${data}`)
  const manifest = new BlockManifest(virtualSize, zero, hashes)
  if (!manifest.diskHash.equals(buf.subarray(40, 72))) throw refuse('MANIFEST_CORRUPT', source, 'its disk hash is not the hash of its blocks')
  return manifest
}

function refuse(code: string, source: string, why: string): ShienError {
  return badInput(code, `Cannot use ${source}: ${why}.`, [
    'Compute the manifest again with this version of shien (the blade does so for a base it has).',
  ])
}
