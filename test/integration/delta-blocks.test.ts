// The block manifest three ways, which must agree byte for byte: straight from the raw disk,
// from a qcow2 through qemu-img (the blade's way), and from VMDKs qemu-img wrote, read without
// qemu-img (the laptop's way). Then VMDKs qemu-img wrote, broken in each way the readers refuse.
import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {Readable} from 'node:stream'
import {inflateSync} from 'node:zlib'
import tar from 'tar-stream'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import type {DiskBlocks} from '../../src/box/disk-blocks.js'
import {vmdkFileBlocks} from '../../src/box/vmdk-file-blocks.js'
import {vmdkStreamBlocks} from '../../src/box/vmdk-stream-blocks.js'
import {manifestOfImage} from '../../src/delta/image-manifest.js'
import {BLOCK_SIZE, type BlockManifest, encodeManifest} from '../../src/delta/manifest.js'
import {manifestOfRawStream} from '../../src/delta/manifest-builder.js'
import {tempDir} from '../support/make-box.js'
import {PATTERN, convertRaw, writePatternDisk} from '../support/pattern-disk.js'
import {rejection} from '../support/refusal.js'

let dir: string
let cleanup: () => Promise<void>
let raw: string
let rawBytes: Buffer
let expected: BlockManifest

beforeAll(async () => {
  ;({dir, cleanup} = await tempDir())
  raw = await writePatternDisk(dir)
  rawBytes = await readFile(raw)
  expected = await manifestOfRawStream(createReadStream(raw), PATTERN.size)
})
afterAll(() => cleanup())

const sha = (b: Buffer) => createHash('sha256').update(b).digest()
/** The documented disk hash, from the raw bytes: sha256 over the sha256 of each 64 KiB block. */
const diskHashOf = (disk: Buffer) => {
  const h = createHash('sha256')
  for (let at = 0; at < disk.length; at += BLOCK_SIZE) h.update(sha(disk.subarray(at, at + BLOCK_SIZE)))
  return h.digest()
}
const block = (i: number) => rawBytes.subarray(i * BLOCK_SIZE, Math.min(rawBytes.length, (i + 1) * BLOCK_SIZE))

async function drain(blocks: DiskBlocks): Promise<BlockManifest> {
  for await (const b of blocks) {
    if (b.zero) continue
    if (!b.hash!.equals(sha(block(b.index))) || !b.data!.equals(block(b.index))) throw new Error(`block ${b.index} differs`)
    if (b.deflated && !inflateSync(b.deflated).equals(b.data!)) throw new Error(`block ${b.index}'s deflated bytes differ`)
  }
  return blocks.manifest()
}


describe('the manifest of the pattern disk', () => {
  it('marks zero blocks by content: holes, written zeroes, and not the block with one byte', () => {
    expect(expected.blockCount).toBe(161)
    expect(expected.isZero(PATTERN.writtenZero.offset / BLOCK_SIZE)).toBe(true)
    expect(expected.isZero(Math.floor(PATTERN.oneByte / BLOCK_SIZE))).toBe(false)
    expect(expected.isZero(100)).toBe(true)
    expect(expected.blockHash(160)).toEqual(sha(rawBytes.subarray(160 * BLOCK_SIZE)))
    expect(expected.diskHash).toEqual(diskHashOf(rawBytes))
  })

  it('has the disk hash docs/delta.md computes with shell tools', async () => {
    // A small disk: the recipe starts three processes per block.
    const small = rawBytes.subarray(0, 8 * BLOCK_SIZE + 1024)
    const path = join(dir, 'small.raw')
    await writeFile(path, small)
    const {execFile} = await import('node:child_process')
    const script = 'split -b 65536 --filter "sha256sum | cut -c1-64 | xxd -r -p" "$1" | sha256sum | cut -c1-64'
    const hex = await new Promise<string>((resolve, reject) => execFile('bash', ['-c', script, 'recipe', path], (e, out) => (e ? reject(e) : resolve(out.trim()))))
    expect(hex).toBe((await manifestOfRawStream(Readable.from([small]), small.length)).diskHash.toString('hex'))
  })
})

describe('manifestOfImage (qemu-img)', () => {
  it('equals the raw disk\'s manifest for a qcow2, in small windows and chunks and with the defaults', async () => {
    const qcow2 = await convertRaw(raw, join(dir, 'pattern.qcow2'), 'qcow2')
    const small = await manifestOfImage(qcow2, {format: 'qcow2', windowBytes: 1024 * 1024, chunkBytes: 3 * BLOCK_SIZE, tmpDir: dir})
    expect(encodeManifest(small)).toEqual(encodeManifest(expected))
    expect(encodeManifest(await manifestOfImage(qcow2, {format: 'qcow2'}))).toEqual(encodeManifest(expected))
  })

  it('equals it for a fully allocated qcow2 (zero blocks stored as data) and for the raw file', async () => {
    const full = await convertRaw(raw, join(dir, 'full.qcow2'), 'qcow2', {allocateAll: true})
    expect(encodeManifest(await manifestOfImage(full, {format: 'qcow2'}))).toEqual(encodeManifest(expected))
    expect(encodeManifest(await manifestOfImage(raw, {format: 'raw', chunkBytes: 1024 * 1024}))).toEqual(encodeManifest(expected))
  })

  it('refuses an image with a backing file and leaves no scratch folder behind', async () => {
    const base = await convertRaw(raw, join(dir, 'base.qcow2'), 'qcow2')
    const overlay = join(dir, 'overlay.qcow2')
    const {execFile} = await import('node:child_process')
    await new Promise((resolve, reject) => execFile('qemu-img', ['create', '-f', 'qcow2', '-F', 'qcow2', '-b', base, overlay], (e) => (e ? reject(e) : resolve(null))))
    const e = await rejection(manifestOfImage(overlay, {format: 'qcow2', tmpDir: dir}))
    expect(e.code).toBe('IMAGE_NOT_STANDALONE')
    const {readdir} = await import('node:fs/promises')
    expect((await readdir(dir)).filter((n) => n.startsWith('shien-manifest-'))).toEqual([])
  })
})

describe('VMDK readers (no qemu-img)', () => {
  it('a streamOptimized VMDK, read as a stream, gives the raw disk\'s manifest', async () => {
    const vmdk = await convertRaw(raw, join(dir, 'so.vmdk'), 'vmdk', {subformat: 'streamOptimized'})
    const m = await drain(vmdkStreamBlocks(createReadStream(vmdk, {highWaterMark: 10_000}), 'so.vmdk'))
    expect(encodeManifest(m)).toEqual(encodeManifest(expected))
    expect(encodeManifest(await drain(vmdkFileBlocks(vmdk)))).toEqual(encodeManifest(expected))
  })

  it('one with every grain stored, zero ones included, gives the same manifest', async () => {
    const vmdk = await convertRaw(raw, join(dir, 'so-full.vmdk'), 'vmdk', {subformat: 'streamOptimized', allocateAll: true})
    expect(encodeManifest(await drain(vmdkFileBlocks(vmdk)))).toEqual(encodeManifest(expected))
  })

  it('offers stored grains deflated as they are', async () => {
    const vmdk = join(dir, 'so.vmdk')
    let deflated = 0
    for await (const b of vmdkStreamBlocks(createReadStream(vmdk), 'so.vmdk')) if (b.deflated) deflated++
    expect(deflated).toBeGreaterThan(5)
  })

  it('a streamOptimized VMDK inside a box tar, read from the tar entry, then the next entry', async () => {
    const pack = tar.pack()
    pack.entry({name: 'box.ovf'}, '<Envelope/>')
    pack.entry({name: 'so.vmdk'}, await readFile(join(dir, 'so.vmdk')))
    pack.entry({name: 'metadata.json'}, '{}')
    pack.finalize()
    const extract = tar.extract()
    Readable.from(pack).pipe(extract)
    const seen: string[] = []
    for await (const entry of extract) {
      seen.push(entry.header.name)
      if (entry.header.name === 'so.vmdk') expect(encodeManifest(await drain(vmdkStreamBlocks(entry, 'so.vmdk')))).toEqual(encodeManifest(expected))
      else entry.resume()
    }
    expect(seen).toEqual(['box.ovf', 'so.vmdk', 'metadata.json'])
  })

  it('a monolithicSparse VMDK, read from its file, gives the raw disk\'s manifest', async () => {
    const vmdk = await convertRaw(raw, join(dir, 'ms.vmdk'), 'vmdk', {subformat: 'monolithicSparse'})
    expect(encodeManifest(await drain(vmdkFileBlocks(vmdk)))).toEqual(encodeManifest(expected))
    const e = await rejection(drain(vmdkStreamBlocks(createReadStream(vmdk), 'ms.vmdk')))
    expect(e.code).toBe('VMDK_NOT_STREAM')
  })

  it('stops at the next block when cancelled', async () => {
    for (const file of ['so.vmdk', 'ms.vmdk']) {
      const controller = new AbortController()
      let seen = 0
      const reading = (async () => {
        for await (const b of vmdkFileBlocks(join(dir, file), {signal: controller.signal})) if (++seen === 3) controller.abort(b.index)
      })()
      await expect(reading).rejects.toBe(2)
      expect(seen).toBe(3)
    }
  })
})

describe('broken VMDKs made from qemu-img\'s', () => {
  /** Sector offsets of the grain markers in a streamOptimized file. */
  function grainMarkers(file: Buffer): number[] {
    const out: number[] = []
    let at = Number(file.readBigUInt64LE(64)) * 512
    for (;;) {
      const value = file.readBigUInt64LE(at)
      const size = file.readUInt32LE(at + 8)
      if (size === 0) return out
      out.push(at)
      at += Math.ceil((12 + size) / 512) * 512
    }
  }

  async function variant(name: string, edit: (b: Buffer) => Buffer): Promise<string> {
    const path = join(dir, name)
    await writeFile(path, edit(Buffer.from(await readFile(join(dir, 'so.vmdk')))))
    return path
  }

  /** Reads every block without comparing it with the pattern: a broken file's content differs. */
  async function read(path: string): Promise<BlockManifest> {
    const blocks = vmdkStreamBlocks(createReadStream(path), 'so.vmdk')
    for await (const b of blocks) void b
    return blocks.manifest()
  }

  it('truncated inside a grain, or before the end-of-stream marker', async () => {
    const file = await readFile(join(dir, 'so.vmdk'))
    const markers = grainMarkers(file)
    const mid = await variant('cut1.vmdk', (b) => b.subarray(0, markers[2] + 3000))
    expect((await rejection(read(mid))).code).toBe('VMDK_TRUNCATED')
    const last = markers.at(-1)!
    const noEnd = await variant('cut2.vmdk', (b) => b.subarray(0, last + 512))
    expect((await rejection(read(noEnd))).message).toMatch(/before its end-of-stream marker/)
  })

  it('a grain LBA out of range, duplicated, out of order', async () => {
    const file = await readFile(join(dir, 'so.vmdk'))
    const [, second, third] = grainMarkers(file)
    const far = await variant('far.vmdk', (b) => (b.writeBigUInt64LE(128n * 200n, second), b))
    expect((await rejection(read(far))).message).toMatch(/past the disk's 20483 sectors/)
    const dup = await variant('dup.vmdk', (b) => (b.writeBigUInt64LE(0n, second), b))
    expect((await rejection(read(dup))).message).toMatch(/out of order or repeated/)
    const back = await variant('back.vmdk', (b) => (b.writeBigUInt64LE(128n * 100n, second), b.writeBigUInt64LE(128n, third), b))
    expect((await rejection(read(back))).message).toMatch(/out of order or repeated/)
  })

  it('a grain size other than 64 KiB, a grain of the wrong length, a bad marker', async () => {
    const big = await variant('grain.vmdk', (b) => (b.writeBigUInt64LE(256n, 20), b))
    expect((await rejection(read(big))).code).toBe('VMDK_GRAIN_SIZE')
    const file = await readFile(join(dir, 'so.vmdk'))
    const [first] = grainMarkers(file)
    const short = await variant('short.vmdk', (b) => (b.writeUInt32LE(100, first + 8), b))
    expect((await rejection(read(short))).code).toBe('VMDK_BAD_GRAIN')
    const eos = grainMarkers(file).at(-1)!
    const end = eos + Math.ceil((12 + file.readUInt32LE(eos + 8)) / 512) * 512
    const marker = await variant('marker.vmdk', (b) => (b.writeUInt32LE(7, end + 12), b))
    expect((await rejection(read(marker))).code).toBe('VMDK_BAD_MARKER')
  })

  it('a monolithicSparse grain table entry of 1 is a zero grain when the header allows zeroed grains, and refused otherwise', async () => {
    const ms = await readFile(join(dir, 'ms.vmdk'))
    const gt = ms.readUInt32LE(Number(ms.readBigUInt64LE(56)) * 512) * 512
    const edited = Buffer.from(ms)
    edited.writeUInt32LE(1, gt)
    const refused = join(dir, 'ms-one.vmdk')
    await writeFile(refused, edited)
    expect((await rejection(drain(vmdkFileBlocks(refused, {name: 'ms.vmdk'})))).code).toBe('VMDK_BAD_GRAIN')
    edited.writeUInt32LE(edited.readUInt32LE(8) | (1 << 2), 8)
    const zeroed = join(dir, 'ms-zeroed.vmdk')
    await writeFile(zeroed, edited)
    const blocks = vmdkFileBlocks(zeroed, {name: 'ms.vmdk'})
    for await (const b of blocks) void b
    expect(blocks.manifest().isZero(0)).toBe(true)
    expect(blocks.manifest().blockHash(1)).toEqual(expected.blockHash(1))
  })

  it('a monolithicSparse grain table entry past the end of the file, and a cut file', async () => {
    const ms = await readFile(join(dir, 'ms.vmdk'))
    const gd = Number(ms.readBigUInt64LE(56)) * 512
    const gt = ms.readUInt32LE(gd) * 512
    const past = join(dir, 'ms-past.vmdk')
    const edited = Buffer.from(ms)
    edited.writeUInt32LE(ms.length / 512 + 10, gt)
    await writeFile(past, edited)
    expect((await rejection(drain(vmdkFileBlocks(past, {name: 'ms.vmdk'})))).message).toMatch(/outside the file's grains/)
    const cut = join(dir, 'ms-cut.vmdk')
    await writeFile(cut, ms.subarray(0, gd + 8))
    expect((await rejection(drain(vmdkFileBlocks(cut, {name: 'ms.vmdk'})))).code).toBe('VMDK_TRUNCATED')
  })
})
