import {createHash, randomBytes} from 'node:crypto'
import {Readable} from 'node:stream'
import {deflateSync, inflateSync} from 'node:zlib'
import {describe, expect, it} from 'vitest'

import type {DiskBlock, DiskBlocks} from '../../../src/box/disk-blocks.js'
import {vmdkStreamBlocks} from '../../../src/box/vmdk-stream-blocks.js'
import {BLOCK_SIZE, encodeManifest} from '../../../src/delta/manifest.js'
import {manifestOfRawStream} from '../../../src/delta/manifest-builder.js'
import {ShienError} from '../../../src/errors.js'
import {footerItem, streamVmdk, type StreamVmdkSpec} from '../../support/stream-vmdk.js'

const sha = (b: Buffer) => createHash('sha256').update(b).digest()
/** The documented disk hash, from the raw bytes: sha256 over the sha256 of each 64 KiB block. */
const diskHashOf = (disk: Buffer) => {
  const h = createHash('sha256')
  for (let at = 0; at < disk.length; at += BLOCK_SIZE) h.update(sha(disk.subarray(at, at + BLOCK_SIZE)))
  return h.digest()
}
const NAME = 'box-disk001.vmdk'

/** Feeds the file in small odd-sized chunks, as a tar entry might arrive. */
function chunked(buf: Buffer, size = 7001): Readable {
  const parts: Buffer[] = []
  for (let i = 0; i < buf.length; i += size) parts.push(buf.subarray(i, i + size))
  return Readable.from(parts)
}

async function readAll(blocks: DiskBlocks): Promise<DiskBlock[]> {
  const out: DiskBlock[] = []
  for await (const b of blocks) out.push({...b, data: b.data && Buffer.from(b.data)})
  return out
}

async function refusal(spec: StreamVmdkSpec | Buffer): Promise<ShienError> {
  const file = Buffer.isBuffer(spec) ? spec : streamVmdk(spec)
  const error = await readAll(vmdkStreamBlocks(chunked(file), NAME)).then(() => undefined, (e: unknown) => e)
  expect(error).toBeInstanceOf(ShienError)
  expect((error as ShienError).exitCode).toBe(3)
  return error as ShienError
}

// 5 blocks and 3 sectors: block 0 data, 1 and 2 absent, 3 an explicit zero grain, 4 data, 5 partial.
const capacitySectors = 5 * 128 + 3
const disk = Buffer.alloc(capacitySectors * 512)
randomBytes(BLOCK_SIZE).copy(disk, 0)
disk.fill(0x41, 4 * BLOCK_SIZE, 4 * BLOCK_SIZE + 100)
disk.fill(0x42, 5 * BLOCK_SIZE)
const grain = (i: number) => disk.subarray(i * BLOCK_SIZE, Math.min(disk.length, (i + 1) * BLOCK_SIZE))
const good: StreamVmdkSpec = {
  name: NAME,
  capacitySectors,
  items: [
    {grain: 0, data: grain(0)},
    {grain: 3 * 128, data: Buffer.alloc(BLOCK_SIZE)},
    {marker: 1, sectors: 4},
    {grain: 4 * 128, data: grain(4)},
    {grain: 5 * 128, data: grain(5)},
    {marker: 1, sectors: 4},
    {marker: 2, sectors: 1},
  ],
}
good.items.push(footerItem(good))

describe('vmdkStreamBlocks', () => {
  it('yields every block in order, zero or data with its hash, and the manifest of the raw disk', async () => {
    const reader = vmdkStreamBlocks(chunked(streamVmdk(good)), NAME)
    const blocks = await readAll(reader)
    expect(blocks.map((b) => [b.index, b.length, b.zero])).toEqual([
      [0, BLOCK_SIZE, false], [1, BLOCK_SIZE, true], [2, BLOCK_SIZE, true], [3, BLOCK_SIZE, true], [4, BLOCK_SIZE, false], [5, 1536, false],
    ])
    for (const b of blocks.filter((x) => !x.zero)) {
      expect(b.data!.equals(grain(b.index))).toBe(true)
      expect(b.hash!.equals(sha(grain(b.index)))).toBe(true)
    }
    const raw = await manifestOfRawStream(Readable.from([disk]), disk.length)
    expect(encodeManifest(reader.manifest())).toEqual(encodeManifest(raw))
    expect(reader.manifest().diskHash).toEqual(diskHashOf(disk))
  })

  it('exposes a grain\'s deflated bytes as stored, which inflate to the block', async () => {
    const stored = deflateSync(grain(4), {level: 1})
    const spec = {...good, items: [{grain: 4 * 128, deflated: stored}, {grain: 5 * 128, data: grain(5)}]}
    const blocks = await readAll(vmdkStreamBlocks(chunked(streamVmdk(spec)), NAME))
    expect(blocks[4].deflated).toEqual(stored)
    expect(inflateSync(blocks[5].deflated!)).toEqual(grain(5))
  })

  it('reads a last grain that runs past the disk\'s end, without offering its deflated bytes', async () => {
    const full = Buffer.alloc(BLOCK_SIZE, 0x42)
    const blocks = await readAll(vmdkStreamBlocks(chunked(streamVmdk({...good, items: [{grain: 5 * 128, data: full}]})), NAME))
    expect(blocks[5].data).toEqual(grain(5))
    expect(blocks[5].deflated).toBeUndefined()
  })

  it('gives the manifest only after the last block, and reads once', async () => {
    const reader = vmdkStreamBlocks(chunked(streamVmdk(good)), NAME)
    expect(() => reader.manifest()).toThrow(/not been read/)
    await readAll(reader)
    await expect(readAll(reader)).rejects.toThrow(/read once/)
  })

  it('drains what follows the end-of-stream marker (qemu pads the file)', async () => {
    const stream = chunked(Buffer.concat([streamVmdk(good), Buffer.alloc(100 * 512)]))
    await readAll(vmdkStreamBlocks(stream, NAME))
    expect(stream.readableEnded).toBe(true)
  })

  it('refuses grains out of order or repeated', async () => {
    const back = await refusal({...good, items: [{grain: 4 * 128, data: grain(4)}, {grain: 0, data: grain(0)}]})
    expect(back.code).toBe('VMDK_BAD_GRAIN')
    expect(back.message).toMatch(/out of order or repeated/)
    const twice = await refusal({...good, items: [{grain: 0, data: grain(0)}, {grain: 0, data: grain(0)}]})
    expect(twice.message).toMatch(/out of order or repeated/)
  })

  it('refuses a grain LBA past the disk or inside a grain', async () => {
    expect((await refusal({...good, items: [{grain: 6 * 128, data: grain(0)}]})).message).toMatch(/past the disk's 643 sectors/)
    expect((await refusal({...good, items: [{grain: 64, data: grain(0)}]})).message).toMatch(/does not start a grain/)
  })

  it('refuses a grain that inflates to more or less than its block, or not at all', async () => {
    expect((await refusal({...good, items: [{grain: 0, data: Buffer.alloc(2 * BLOCK_SIZE, 1)}]})).message).toMatch(/more than a 64 KiB grain/)
    expect((await refusal({...good, items: [{grain: 0, data: Buffer.alloc(4096, 1)}]})).message).toMatch(/inflates to 4096 bytes, not a 65536-byte grain/)
    expect((await refusal({...good, items: [{grain: 0, deflated: randomBytes(300)}]})).message).toMatch(/not a zlib stream/)
    expect((await refusal({...good, items: [{grain: 0, deflated: Buffer.alloc(3 * BLOCK_SIZE)}]})).message).toMatch(/more than two grains/)
  })

  it('refuses grains other than 64 KiB', async () => {
    expect((await refusal({...good, grainSectors: 256})).code).toBe('VMDK_GRAIN_SIZE')
  })

  it('refuses an unknown marker and a footer that does not match the header', async () => {
    expect((await refusal({...good, items: [{marker: 9, sectors: 0}]})).code).toBe('VMDK_BAD_MARKER')
    expect((await refusal({...good, items: [{marker: 1, sectors: 1_000_000, body: Buffer.alloc(0)}]})).code).toBe('VMDK_BAD_MARKER')
    const other = footerItem({...good, capacitySectors: 128})
    expect((await refusal({...good, items: [other]})).message).toMatch(/footer does not repeat its header/)
  })

  it('refuses a stream that ends before its end-of-stream marker, wherever it is cut', async () => {
    const file = streamVmdk(good)
    for (const cut of [100, 512, 128 * 512 + 6, 128 * 512 + 2000, file.length - 512, file.length - 1]) {
      const e = await refusal(file.subarray(0, cut))
      expect(e.code).toMatch(/VMDK_TRUNCATED|VMDK_NOT_SPARSE/)
    }
    expect((await refusal({...good, noEndOfStream: true})).code).toBe('VMDK_TRUNCATED')
  })

  it('refuses what the gate refuses: a descriptor naming another file', async () => {
    const e = await readAll(vmdkStreamBlocks(chunked(streamVmdk({...good, name: 'other.vmdk'})), NAME)).catch((x: ShienError) => x)
    expect((e as ShienError).code).toBe('VMDK_BAD_EXTENT')
  })
})
