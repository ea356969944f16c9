import {createHash} from 'node:crypto'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {deflateSync} from 'node:zlib'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {DeltaWriter, readDelta} from '../../../src/delta/delta-file.js'
import {isShienError} from '../../../src/errors.js'

const BLOCK = 65536
const virtualSize = 4 * BLOCK + 1024
const baseDiskHash = createHash('sha256').update('base').digest()
const newDiskHash = createHash('sha256').update('new').digest()
let dir: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shien-delta-'))
})
afterAll(async () => {
  await rm(dir, {recursive: true, force: true})
})

async function writeSample(path: string): Promise<void> {
  const writer = await DeltaWriter.create(path, {virtualSize, baseDiskHash})
  await writer.add({index: 0, kind: 'raw', payload: Buffer.alloc(BLOCK, 1)})
  await writer.add({index: 2, kind: 'zero', payload: Buffer.alloc(0)})
  await writer.add({index: 4, kind: 'deflate', payload: deflateSync(Buffer.alloc(1024, 7))})
  await writer.finish(newDiskHash)
}

async function readAll(path: string) {
  const {header, records} = await readDelta(path, 'the delta')
  const seen = []
  for await (const record of records) seen.push({index: record.index, kind: record.kind, data: record.data})
  return {header, seen}
}

async function refusal(path: string): Promise<string> {
  try {
    await readAll(path)
  } catch (error) {
    if (isShienError(error)) return error.code
    throw error
  }
  return 'accepted'
}

describe('delta files', () => {
  it('round-trips the header and every kind of record', async () => {
    const path = join(dir, 'good.delta')
    await writeSample(path)
    const {header, seen} = await readAll(path)
    expect(header).toEqual({virtualSize, baseDiskHash, newDiskHash})
    expect(seen.map((r) => [r.index, r.kind, r.data?.length])).toEqual([[0, 'raw', BLOCK], [2, 'zero', undefined], [4, 'deflate', 1024]])
    expect(seen[2].data?.every((b) => b === 7)).toBe(true)
  })

  it('refuses a flipped byte, a cut file, bytes after the end and another version', async () => {
    const path = join(dir, 'sample.delta')
    await writeSample(path)
    const good = await readFile(path)
    const variants: Array<[string, Buffer]> = [
      ['DELTA_CORRUPT', Buffer.concat([good.subarray(0, 200), Buffer.from([good[200] ^ 1]), good.subarray(201)])],
      ['DELTA_TRUNCATED', good.subarray(0, good.length - 40)],
      ['DELTA_CORRUPT', Buffer.concat([good, Buffer.from([0])])],
      ['DELTA_VERSION', Buffer.concat([good.subarray(0, 8), Buffer.from([0, 0, 0, 2]), good.subarray(12)])],
      ['DELTA_BLOCK_SIZE', Buffer.concat([good.subarray(0, 12), Buffer.from([0, 0, 2, 0]), good.subarray(16)])],
      ['DELTA_CORRUPT', Buffer.concat([Buffer.from('NOTDELTA'), good.subarray(8)])],
    ]
    for (const [code, bytes] of variants) {
      await writeFile(path, bytes)
      expect(await refusal(path)).toBe(code)
    }
  })

  it('refuses records out of order, past the disk, of a wrong length, or that do not inflate to their block', async () => {
    // Written by hand: the writer itself refuses to make these.
    const head = Buffer.alloc(88)
    Buffer.from('SHIENDLT').copy(head)
    head.writeUInt32BE(1, 8)
    head.writeUInt32BE(BLOCK, 12)
    head.writeBigUInt64BE(BigInt(virtualSize), 16)
    baseDiskHash.copy(head, 24)
    const record = (index: number, kind: number, payload: Buffer) => {
      const r = Buffer.alloc(13)
      r.writeBigUInt64BE(BigInt(index), 0)
      r.writeUInt8(kind, 8)
      r.writeUInt32BE(payload.length, 9)
      return Buffer.concat([r, payload])
    }
    const file = (records: Buffer[]) => {
      const body = Buffer.concat([head, ...records])
      const end = Buffer.alloc(16)
      end.writeBigUInt64BE(0xffff_ffff_ffff_ffffn, 0)
      end.writeBigUInt64BE(BigInt(records.length), 8)
      const checksum = createHash('sha256').update(body).update(end).digest()
      return Buffer.concat([body, end, checksum])
    }
    const path = join(dir, 'bad.delta')
    const cases: Array<[string, Buffer[]]> = [
      ['accepted', [record(1, 0, Buffer.alloc(0))]],
      ['DELTA_BLOCK_ORDER', [record(2, 0, Buffer.alloc(0)), record(1, 0, Buffer.alloc(0))]],
      ['DELTA_BLOCK_ORDER', [record(1, 0, Buffer.alloc(0)), record(1, 0, Buffer.alloc(0))]],
      ['DELTA_BLOCK_RANGE', [record(5, 0, Buffer.alloc(0))]],
      ['DELTA_BLOCK_LENGTH', [record(0, 1, Buffer.alloc(100))]],
      ['DELTA_BLOCK_LENGTH', [record(4, 1, Buffer.alloc(BLOCK))]],
      ['DELTA_BLOCK_LENGTH', [record(0, 2, deflateSync(Buffer.alloc(BLOCK + 1)))]],
      ['DELTA_BLOCK_LENGTH', [record(0, 2, Buffer.from('not zlib'))]],
      ['DELTA_CORRUPT', [record(0, 9, Buffer.alloc(0))]],
    ]
    for (const [code, records] of cases) {
      await writeFile(path, file(records))
      expect(await refusal(path), code).toBe(code)
    }
  })
})
