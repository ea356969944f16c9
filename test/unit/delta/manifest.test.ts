import {createHash, randomBytes} from 'node:crypto'
import {Readable} from 'node:stream'
import {describe, expect, it} from 'vitest'

import {BLOCK_SIZE, blockCountOf, encodeManifest, parseManifest} from '../../../src/delta/manifest.js'
import {ManifestBuilder, isAllZero, manifestOfRawStream} from '../../../src/delta/manifest-builder.js'
import {refusal} from '../../support/refusal.js'

const sha = (b: Buffer) => createHash('sha256').update(b).digest()
/** The documented disk hash, from the raw bytes: sha256 over the sha256 of each 64 KiB block. */
const diskHashOf = (disk: Buffer) => {
  const h = createHash('sha256')
  for (let at = 0; at < disk.length; at += BLOCK_SIZE) h.update(sha(disk.subarray(at, at + BLOCK_SIZE)))
  return h.digest()
}

/** A disk of 3 full blocks and a 1536-byte last block: data, zero, data with one byte, data. */
function sampleDisk(): Buffer {
  const disk = Buffer.alloc(3 * BLOCK_SIZE + 1536)
  randomBytes(BLOCK_SIZE).copy(disk, 0)
  disk[2 * BLOCK_SIZE + 777] = 1
  disk.fill(0x79, 3 * BLOCK_SIZE)
  return disk
}

function build(disk: Buffer) {
  const b = new ManifestBuilder(disk.length)
  for (let i = 0; i < blockCountOf(disk.length); i++) b.add(disk.subarray(i * BLOCK_SIZE, Math.min(disk.length, (i + 1) * BLOCK_SIZE)))
  return b.finish()
}


/** Re-computes the trailing checksum, so a test reaches the check behind it. */
function reseal(buf: Buffer): Buffer {
  const out = Buffer.from(buf)
  sha(out.subarray(0, out.length - 32)).copy(out, out.length - 32)
  return out
}

describe('ManifestBuilder', () => {
  it('hashes each block, marks zero blocks by content, and hashes the whole disk', () => {
    const disk = sampleDisk()
    const m = build(disk)
    expect(m.blockCount).toBe(4)
    expect(m.blockHash(0)).toEqual(sha(disk.subarray(0, BLOCK_SIZE)))
    expect(m.isZero(1)).toBe(true)
    expect(m.blockHash(1)).toBeUndefined()
    expect(m.blockHash(2)).toEqual(sha(disk.subarray(2 * BLOCK_SIZE, 3 * BLOCK_SIZE)))
    expect(m.blockHash(3)).toEqual(sha(disk.subarray(3 * BLOCK_SIZE)))
    expect(m.dataBlockCount).toBe(3)
    expect(m.diskHash).toEqual(diskHashOf(disk))
    expect(m.diskHash).not.toEqual(diskHashOf(Buffer.alloc(disk.length)))
  })

  it('addZero gives what adding the zero bytes gives, last partial block included', () => {
    const disk = Buffer.alloc(2 * BLOCK_SIZE + 512)
    const b = new ManifestBuilder(disk.length)
    b.addZero(); b.addZero(); b.addZero()
    expect(encodeManifest(b.finish())).toEqual(encodeManifest(build(disk)))
  })

  it('refuses a block of the wrong length, one too many, and finishing early', () => {
    const b = new ManifestBuilder(BLOCK_SIZE + 512)
    expect(() => b.add(Buffer.alloc(512))).toThrow(/must be 65536 bytes/)
    b.add(Buffer.alloc(BLOCK_SIZE))
    expect(() => b.finish()).toThrow(/1 of 2 blocks/)
    expect(() => b.add(Buffer.alloc(BLOCK_SIZE))).toThrow(/must be 512 bytes/)
    b.addZero()
    expect(() => b.addZero()).toThrow(/no more/)
  })

  it('refuses a virtual size that is not a positive multiple of 512', () => {
    expect(() => new ManifestBuilder(0)).toThrow(RangeError)
    expect(() => new ManifestBuilder(1000)).toThrow(RangeError)
  })

  it('cuts a raw stream into blocks whatever the chunk sizes', async () => {
    const disk = sampleDisk()
    const chunks = [disk.subarray(0, 100), disk.subarray(100, 70_000), disk.subarray(70_000)]
    const m = await manifestOfRawStream(Readable.from(chunks), disk.length)
    expect(encodeManifest(m)).toEqual(encodeManifest(build(disk)))
    await expect(manifestOfRawStream(Readable.from([disk.subarray(0, 1000)]), disk.length)).rejects.toThrow(/ended inside block 0/)
    await expect(manifestOfRawStream(Readable.from([disk, Buffer.alloc(1)]), disk.length)).rejects.toThrow(/more came/)
  })

  it('isAllZero looks at every byte, aligned or not', () => {
    const buf = Buffer.alloc(BLOCK_SIZE + 3)
    expect(isAllZero(buf)).toBe(true)
    expect(isAllZero(buf.subarray(1))).toBe(true)
    buf[BLOCK_SIZE + 2] = 1
    expect(isAllZero(buf)).toBe(false)
    expect(isAllZero(buf.subarray(1))).toBe(false)
    buf[BLOCK_SIZE + 2] = 0
    buf[8] = 0x80
    expect(isAllZero(buf)).toBe(false)
  })
})

describe('encodeManifest and parseManifest', () => {
  const m = build(sampleDisk())
  const encoded = encodeManifest(m)

  it('round-trips, with the documented layout', () => {
    expect(encoded.subarray(0, 8).toString('latin1')).toBe('SHIENBMF')
    expect(encoded.readUInt32BE(8)).toBe(1)
    expect(encoded.readUInt32BE(12)).toBe(65536)
    expect(encoded.readBigUInt64BE(16)).toBe(BigInt(3 * BLOCK_SIZE + 1536))
    expect(encoded.readBigUInt64BE(24)).toBe(4n)
    expect(encoded.readBigUInt64BE(32)).toBe(3n)
    expect(encoded.subarray(40, 72)).toEqual(m.diskHash)
    // 4 tags, 3 hashes, the checksum
    expect(encoded.length).toBe(72 + 4 + 3 * 32 + 32)
    expect(encoded[72]).toBe(1)
    expect(encoded[72 + 33]).toBe(0)
    const back = parseManifest(encoded)
    expect(encodeManifest(back)).toEqual(encoded)
    expect(back.isZero(1)).toBe(true)
    expect(back.blockHash(3)).toEqual(m.blockHash(3))
  })

  it('refuses another version', () => {
    const bad = Buffer.from(encoded)
    bad.writeUInt32BE(2, 8)
    const e = refusal(() => parseManifest(reseal(bad), 'the manifest of os101/debian12 2026.1.0'))
    expect(e.code).toBe('MANIFEST_VERSION')
    expect(e.message).toMatch(/os101\/debian12 2026.1.0: it is format version 2/)
  })

  it('refuses another block size', () => {
    const bad = Buffer.from(encoded)
    bad.writeUInt32BE(4096, 12)
    expect(refusal(() => parseManifest(reseal(bad))).code).toBe('MANIFEST_BLOCK_SIZE')
  })

  it('refuses a block count that does not match the virtual size', () => {
    const bad = Buffer.from(encoded)
    bad.writeBigUInt64BE(5n, 24)
    const e = refusal(() => parseManifest(reseal(bad)))
    expect(e.code).toBe('MANIFEST_COUNT')
    expect(e.message).toMatch(/lists 5 blocks, but a disk of 198144 bytes has 4/)
    const bigger = Buffer.from(encoded)
    bigger.writeBigUInt64BE(BigInt(5 * BLOCK_SIZE), 16)
    expect(refusal(() => parseManifest(reseal(bigger))).code).toBe('MANIFEST_COUNT')
  })

  it('refuses a truncated manifest, wherever it was cut', () => {
    for (const length of [0, 10, 71, 100, encoded.length - 1]) {
      expect(refusal(() => parseManifest(encoded.subarray(0, length))).code).toBe('MANIFEST_TRUNCATED')
    }
  })

  it('refuses bytes after the end, a bad checksum, a bad magic, a bad tag and a wrong data count', () => {
    expect(refusal(() => parseManifest(Buffer.concat([encoded, Buffer.alloc(1)]))).code).toBe('MANIFEST_CORRUPT')
    const flipped = Buffer.from(encoded)
    flipped[80] ^= 1
    expect(refusal(() => parseManifest(flipped)).message).toMatch(/checksum/)
    const magic = Buffer.from(encoded)
    magic.write('X', 0, 'latin1')
    expect(refusal(() => parseManifest(reseal(magic))).code).toBe('MANIFEST_CORRUPT')
    const tag = Buffer.from(encoded)
    tag[72 + 33] = 7
    expect(refusal(() => parseManifest(reseal(tag))).message).toMatch(/block 1 has the unknown tag 7/)
    // A zero tag where a data block was: the entries are one hash short of the header's count.
    const fewer = Buffer.concat([encoded.subarray(0, 72), Buffer.from([0]), encoded.subarray(72 + 33)])
    fewer.writeBigUInt64BE(3n, 32)
    expect(refusal(() => parseManifest(reseal(Buffer.concat([fewer, Buffer.alloc(32)])))).message).toMatch(/it has 2 data blocks, its header says 3/)
  })

  it('refuses a disk hash that is not the hash of the blocks', () => {
    const bad = Buffer.from(encoded)
    bad[40] ^= 1
    expect(refusal(() => parseManifest(reseal(bad))).message).toMatch(/disk hash is not the hash of its blocks/)
  })

  it('refuses a virtual size that is zero, not sector-aligned or past 2 TiB', () => {
    for (const size of [0n, 1000n, 2n ** 42n]) {
      const bad = Buffer.from(encoded)
      bad.writeBigUInt64BE(size, 16)
      expect(refusal(() => parseManifest(reseal(bad))).code).toBe('MANIFEST_CORRUPT')
    }
  })
})
