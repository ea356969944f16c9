import {createHash, type Hash} from 'node:crypto'
import {open, type FileHandle} from 'node:fs/promises'
import {inflateSync} from 'node:zlib'

import {badInput, type ShienError} from '../errors.js'
import {BLOCK_SIZE, blockCountOf, blockLengthOf, MAX_VIRTUAL_SIZE} from './manifest.js'

/**
 * A delta: the blocks of a new virtual disk that differ from a base's, as the laptop sends them
 * and the blade applies them on an overlay of the base. Version 1, binary, big-endian
 * (docs/delta.md):
 *
 *   header   magic "SHIENDLT" | u32 version 1 | u32 block size 65536 | u64 virtual size
 *            | 32 base disk hash (the manifest's) | 32 new disk hash
 *   records  u64 block index | u8 kind | u32 length | payload, block indexes strictly rising
 *            kind 0: the block is now all zeroes (length 0)
 *            kind 1: raw, length = the block's length
 *            kind 2: a zlib stream (RFC 1950, as a VMDK grain stores it) that inflates to the block
 *   trailer  u64 0xffffffffffffffff | u64 record count | 32 sha256 of every byte before the trailer's hash
 */

export const DELTA_MAGIC = Buffer.from('SHIENDLT', 'latin1')
export const DELTA_VERSION = 1
const HEADER = 8 + 4 + 4 + 8 + 32 + 32
const RECORD_HEAD = 8 + 1 + 4
const END_MARK = 0xffff_ffff_ffff_ffffn
const TRAILER = 8 + 8 + 32
/** A payload is at most one block; a deflated grain may be a little larger than its block. */
const MAX_PAYLOAD = BLOCK_SIZE + 1024

export type DeltaKind = 'zero' | 'raw' | 'deflate'
const KIND_CODE: Record<DeltaKind, number> = {zero: 0, raw: 1, deflate: 2}
const KIND_NAME: DeltaKind[] = ['zero', 'raw', 'deflate']

export interface DeltaHeader {
  virtualSize: number
  /** The disk hash of the base the delta is made against. */
  baseDiskHash: Buffer
  /** The disk hash of the virtual disk the base plus the delta make. */
  newDiskHash: Buffer
}

export interface DeltaRecord {
  index: number
  kind: DeltaKind
  /** The payload as it is in the file: nothing for zero, the bytes for raw, a zlib stream for deflate. */
  payload: Buffer
}

/**
 * Writes a delta file record by record. The new disk's hash is known only once every block was
 * read, so the header's slot for it is written last, before the file is closed.
 */
export class DeltaWriter {
  private readonly hash: Hash = createHash('sha256')
  private offset = 0
  private records = 0
  private last = -1
  private payloadBytes = 0

  private constructor(
    private readonly file: FileHandle,
    private readonly header: Omit<DeltaHeader, 'newDiskHash'>,
  ) {}

  static async create(path: string, header: Omit<DeltaHeader, 'newDiskHash'>): Promise<DeltaWriter> {
    checkHeader({...header, newDiskHash: Buffer.alloc(32)}, 'the delta being written', (code, message) => new RangeError(`${code}: ${message}`))
    const writer = new DeltaWriter(await open(path, 'w', 0o600), header)
    // The new disk hash is written over these zeroes by finish(); the checksum covers the zeroes.
    await writer.put(encodeHeader({...header, newDiskHash: Buffer.alloc(32)}), true)
    return writer
  }

  /** Bytes written so far, and the payload bytes among them. */
  get size(): {bytes: number; payloadBytes: number; records: number} {
    return {bytes: this.offset, payloadBytes: this.payloadBytes, records: this.records}
  }

  async add(record: DeltaRecord): Promise<void> {
    const {virtualSize} = this.header
    if (record.index <= this.last || record.index >= blockCountOf(virtualSize)) throw new RangeError(`Delta block ${record.index} is out of order or past the disk.`)
    const head = Buffer.alloc(RECORD_HEAD)
    head.writeBigUInt64BE(BigInt(record.index), 0)
    head.writeUInt8(KIND_CODE[record.kind], 8)
    head.writeUInt32BE(record.payload.length, 9)
    await this.put(head, true)
    if (record.payload.length > 0) await this.put(record.payload, true)
    this.last = record.index
    this.records++
    this.payloadBytes += record.payload.length
  }

  /** Ends the file with its trailer and the new disk's hash; returns the file's size. */
  async finish(newDiskHash: Buffer): Promise<number> {
    const trailer = Buffer.alloc(16)
    trailer.writeBigUInt64BE(END_MARK, 0)
    trailer.writeBigUInt64BE(BigInt(this.records), 8)
    await this.put(trailer, true)
    await this.put(this.hash.digest(), false)
    await this.file.write(newDiskHash, 0, 32, HEADER - 32)
    await this.file.close()
    return this.offset
  }

  async abandon(): Promise<void> {
    await this.file.close().catch(() => undefined)
  }

  private async put(bytes: Buffer, hashed: boolean): Promise<void> {
    await this.file.write(bytes, 0, bytes.length, this.offset)
    this.offset += bytes.length
    if (hashed) this.hash.update(bytes)
  }
}

function encodeHeader(h: DeltaHeader): Buffer {
  const buf = Buffer.alloc(HEADER)
  DELTA_MAGIC.copy(buf, 0)
  buf.writeUInt32BE(DELTA_VERSION, 8)
  buf.writeUInt32BE(BLOCK_SIZE, 12)
  buf.writeBigUInt64BE(BigInt(h.virtualSize), 16)
  h.baseDiskHash.copy(buf, 24)
  h.newDiskHash.copy(buf, 56)
  return buf
}

type Refuse = (code: string, message: string) => Error

function checkHeader(h: DeltaHeader, source: string, refuse: Refuse): void {
  const {virtualSize} = h
  if (!Number.isSafeInteger(virtualSize) || virtualSize <= 0 || virtualSize > MAX_VIRTUAL_SIZE || virtualSize % 512 !== 0) {
    throw refuse('DELTA_CORRUPT', `${source} describes a disk of ${virtualSize} bytes (a positive multiple of 512 up to 2 TiB is expected).`)
  }
  if (h.baseDiskHash.length !== 32 || h.newDiskHash.length !== 32) throw refuse('DELTA_CORRUPT', `${source} has a malformed disk hash.`)
}

const refused: Refuse = (code, message) =>
  badInput(code, message, ['Push again with --full to send the whole box, and report this if it happens again.']) as ShienError

/**
 * Reads a delta file strictly, record by record, with memory for one record: wrong magic,
 * version or block size, records out of order, past the disk, of the wrong length, or that do
 * not inflate to their block, a count or checksum that does not match, and bytes after the end
 * are refused (exit 3) before the caller acts on the record that broke the rule. The caller
 * must not treat the disk as complete until the iteration ended without an error.
 */
export async function readDelta(path: string, source = path): Promise<{header: DeltaHeader; records: AsyncGenerator<DeltaRecord & {data: Buffer | undefined}>}> {
  const file = await open(path, 'r')
  try {
    const size = (await file.stat()).size
    if (size < HEADER + TRAILER) throw refused('DELTA_TRUNCATED', `${source} is shorter than a delta's header and trailer.`)
    const head = await readAt(file, 0, HEADER)
    if (!head.subarray(0, 8).equals(DELTA_MAGIC)) throw refused('DELTA_CORRUPT', `${source} is not a shien delta.`)
    const version = head.readUInt32BE(8)
    if (version !== DELTA_VERSION) throw refused('DELTA_VERSION', `${source} is delta version ${version}; this shien reads version ${DELTA_VERSION}.`)
    const blockSize = head.readUInt32BE(12)
    if (blockSize !== BLOCK_SIZE) throw refused('DELTA_BLOCK_SIZE', `${source} uses ${blockSize}-byte blocks; deltas use ${BLOCK_SIZE}.`)
    const header: DeltaHeader = {
      virtualSize: Number(head.readBigUInt64BE(16)),
      baseDiskHash: Buffer.from(head.subarray(24, 56)),
      newDiskHash: Buffer.from(head.subarray(56, 88)),
    }
    checkHeader(header, source, refused)
    // The records open the file again when read, so a caller that stops at the header leaves nothing open.
    return {header, records: records(path, header, head, source)}
  } finally {
    await file.close()
  }
}

async function* records(path: string, header: DeltaHeader, head: Buffer, source: string): AsyncGenerator<DeltaRecord & {data: Buffer | undefined}> {
  const file = await open(path, 'r')
  const size = (await file.stat()).size
  const hash = createHash('sha256').update(Buffer.concat([head.subarray(0, 56), Buffer.alloc(32)]))
  const blockCount = blockCountOf(header.virtualSize)
  try {
    let offset = HEADER
    let last = -1
    let count = 0
    for (;;) {
      if (offset + 16 > size - 32) throw refused('DELTA_TRUNCATED', `${source} ends inside its records (no trailer).`)
      const mark = await readAt(file, offset, 16)
      if (mark.readBigUInt64BE(0) === END_MARK) {
        hash.update(mark)
        const declared = Number(mark.readBigUInt64BE(8))
        if (declared !== count) throw refused('DELTA_CORRUPT', `${source} says it has ${declared} records, but has ${count}.`)
        if (offset + TRAILER !== size) throw refused('DELTA_CORRUPT', `${source} has bytes after its end.`)
        const checksum = await readAt(file, offset + 16, 32)
        if (!hash.digest().equals(checksum)) throw refused('DELTA_CORRUPT', `${source} does not match its own checksum (damaged in transit or on disk).`)
        return
      }
      const recordHead = await readAt(file, offset, RECORD_HEAD)
      const index = Number(recordHead.readBigUInt64BE(0))
      const kind = KIND_NAME[recordHead.readUInt8(8)]
      const length = recordHead.readUInt32BE(9)
      if (!Number.isSafeInteger(index) || index >= blockCount) throw refused('DELTA_BLOCK_RANGE', `${source} has a block (${index}) past the end of the ${header.virtualSize}-byte disk.`)
      if (index <= last) throw refused('DELTA_BLOCK_ORDER', `${source} has block ${index} after block ${last}: blocks must rise and appear once.`)
      if (kind === undefined) throw refused('DELTA_CORRUPT', `${source} has a record of unknown kind ${recordHead.readUInt8(8)} (block ${index}).`)
      const blockLength = blockLengthOf(header.virtualSize, index)
      const lengthOk = kind === 'zero' ? length === 0 : kind === 'raw' ? length === blockLength : length > 0 && length <= MAX_PAYLOAD
      if (!lengthOk) throw refused('DELTA_BLOCK_LENGTH', `${source} has a ${kind} record of ${length} bytes for block ${index}, which holds ${blockLength}.`)
      if (offset + RECORD_HEAD + length > size - TRAILER) throw refused('DELTA_TRUNCATED', `${source} ends inside block ${index}.`)
      const payload = length > 0 ? await readAt(file, offset + RECORD_HEAD, length) : Buffer.alloc(0)
      hash.update(recordHead).update(payload)
      const data = kind === 'zero' ? undefined : kind === 'raw' ? payload : inflated(payload, blockLength, index, source)
      offset += RECORD_HEAD + length
      last = index
      count++
      yield {index, kind, payload, data}
    }
  } finally {
    await file.close()
  }
}

function inflated(payload: Buffer, blockLength: number, index: number, source: string): Buffer {
  let data: Buffer
  try {
    data = inflateSync(payload, {maxOutputLength: blockLength})
  } catch {
    throw refused('DELTA_BLOCK_LENGTH', `${source}: block ${index} does not inflate to ${blockLength} bytes.`)
  }
  if (data.length !== blockLength) throw refused('DELTA_BLOCK_LENGTH', `${source}: block ${index} inflates to ${data.length} bytes, not ${blockLength}.`)
  return data
}

async function readAt(file: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length)
  const {bytesRead} = await file.read(buf, 0, length, position)
  if (bytesRead !== length) throw refused('DELTA_TRUNCATED', `a delta ends early at byte ${position + bytesRead}.`)
  return buf
}
