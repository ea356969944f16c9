import {inflateSync} from 'node:zlib'

import {BLOCK_SIZE, type BlockManifest, blockLengthOf} from '../delta/manifest.js'
import {ManifestBuilder} from '../delta/manifest-builder.js'
import {type DiskBlock, type DiskBlocks, diskBlocks} from './disk-blocks.js'
import {ExactReader} from './exact-reader.js'
import {checkVmdkHeader, vmdkHeadLength} from './vmdk-gate.js'
import {GRAIN_SECTORS, SECTOR, isStreamOptimized, parseSparseHeader, vmdkRefused, type SparseHeader} from './vmdk-sparse-header.js'

const MARKER_EOS = 0
const MARKER_GT = 1
const MARKER_GD = 2
const MARKER_FOOTER = 3
/** qemu refuses a compressed grain longer than two grains; so does this reader. */
const MAX_DEFLATED = 2 * BLOCK_SIZE
/** A grain table or directory larger than this (a 2 TiB disk's directory is 512) is refused. */
const MAX_METADATA_SECTORS = 4096

/**
 * Reads a streamOptimized VMDK front to back (as it comes out of a box's tar) and yields its
 * 64 KiB blocks in virtual-disk order, zero or data with their sha256. Grains are placed by the
 * LBA in their markers, so the header's grain directory (GD_AT_END in VirtualBox's exports) is
 * never needed; the grain tables and directory in the stream are skipped. Grains must come in
 * increasing LBA order, which VirtualBox and qemu write; anything else is refused. Holds one
 * grain at a time. `name` is the disk's file name, which its descriptor must name.
 * `stream` is any source of byte chunks (a Node Readable, a tar-stream entry); it is read to
 * its end on success and left to the caller otherwise.
 */
export function vmdkStreamBlocks(stream: AsyncIterable<unknown>, name: string, o: {signal?: AbortSignal} = {}): DiskBlocks {
  return diskBlocks(() => readStream(new ExactReader(stream), name), o.signal)
}

async function* readStream(r: ExactReader, name: string): AsyncGenerator<DiskBlock, BlockManifest> {
  const head = await readHead(r, name)
  const info = checkVmdkHeader(head, name)
  const h = parseSparseHeader(head, name)
  if (info.createType !== 'streamOptimized' || !isStreamOptimized(h)) {
    throw vmdkRefused('VMDK_NOT_STREAM', name, `it is ${info.createType} without deflated grains in markers, which can only be read from a file`)
  }
  if (h.overheadSectors * SECTOR < r.position) {
    throw vmdkRefused('VMDK_BAD_MARKER', name, 'its first grain would start inside its descriptor')
  }
  await skipExactly(r, h.overheadSectors * SECTOR - r.position, name)
  const builder = new ManifestBuilder(info.capacityBytes)
  for (;;) {
    const grain = await nextGrain(r, h, name)
    if (grain === undefined) break
    const index = grain.lba / GRAIN_SECTORS
    if (index < builder.nextIndex) {
      throw vmdkRefused('VMDK_BAD_GRAIN', name, `the grain for sector ${grain.lba} comes after the one for sector ${(builder.nextIndex - 1) * GRAIN_SECTORS} (grains out of order or repeated)`)
    }
    while (builder.nextIndex < index) yield builder.addZero()
    yield dataBlock(builder, grain, name)
  }
  while (builder.nextIndex < builder.blockCount) yield builder.addZero()
  await r.drain()
  return builder.finish()
}

/** The sparse header and embedded descriptor, as many bytes as the gate needs. */
async function readHead(r: ExactReader, name: string): Promise<Buffer> {
  const first = await r.readUpTo(SECTOR)
  const want = vmdkHeadLength(first)
  const rest = want > first.length ? await r.readUpTo(want - first.length) : Buffer.alloc(0)
  return Buffer.concat([first, rest])
}

interface Grain {
  lba: number
  deflated: Buffer
  offset: number
}

/** The next grain in the stream, skipping metadata; undefined at the end-of-stream marker. */
async function nextGrain(r: ExactReader, h: SparseHeader, name: string): Promise<Grain | undefined> {
  for (;;) {
    const offset = r.position
    const marker = await readExactly(r, 12, name)
    const value = marker.readBigUInt64LE(0)
    const size = marker.readUInt32LE(8)
    if (size > 0) return readGrain(r, {offset, value, size}, h, name)
    const type = (await readExactly(r, SECTOR - 12, name)).readUInt32LE(0)
    if (type === MARKER_EOS && value === 0n) return undefined
    if ((type === MARKER_GT || type === MARKER_GD) && value <= MAX_METADATA_SECTORS) {
      await skipExactly(r, Number(value) * SECTOR, name)
    } else if (type === MARKER_FOOTER && value === 1n) {
      checkFooter(await readExactly(r, SECTOR, name), h, name)
    } else {
      throw vmdkRefused('VMDK_BAD_MARKER', name, `the marker at byte ${offset} (type ${type}, ${value} sectors) is not one a streamOptimized VMDK has`)
    }
  }
}

async function readGrain(r: ExactReader, m: {offset: number; value: bigint; size: number}, h: SparseHeader, name: string): Promise<Grain> {
  const at = `the grain at byte ${m.offset}`
  if (m.size > MAX_DEFLATED) throw vmdkRefused('VMDK_BAD_GRAIN', name, `${at} claims ${m.size} compressed bytes, more than two grains`)
  if (m.value % BigInt(GRAIN_SECTORS) !== 0n) throw vmdkRefused('VMDK_BAD_GRAIN', name, `${at} is for sector ${m.value}, which does not start a grain`)
  if (m.value >= BigInt(h.capacitySectors)) {
    throw vmdkRefused('VMDK_BAD_GRAIN', name, `${at} is for sector ${m.value}, past the disk's ${h.capacitySectors} sectors`)
  }
  const deflated = await readExactly(r, m.size, name)
  await skipExactly(r, (SECTOR - ((12 + m.size) % SECTOR)) % SECTOR, name)
  return {lba: Number(m.value), deflated, offset: m.offset}
}

function dataBlock(builder: ManifestBuilder, grain: Grain, name: string): DiskBlock {
  const at = `the grain for sector ${grain.lba} (byte ${grain.offset})`
  let data: Buffer
  try {
    data = inflateSync(grain.deflated, {maxOutputLength: BLOCK_SIZE})
  } catch (error) {
    const tooLarge = (error as {code?: string}).code === 'ERR_BUFFER_TOO_LARGE'
    throw vmdkRefused('VMDK_BAD_GRAIN', name, tooLarge ? `${at} inflates to more than a 64 KiB grain` : `${at} is not a zlib stream (${(error as Error).message})`)
  }
  const length = blockLengthOf(builder.virtualSize, builder.nextIndex)
  if (data.length < length) throw vmdkRefused('VMDK_BAD_GRAIN', name, `${at} inflates to ${data.length} bytes, not a ${length}-byte grain`)
  const block = builder.add(data.subarray(0, length))
  if (block.zero) return block
  // A last grain that runs past the disk's end inflates to more than the block: not forwardable as is.
  return {...block, data: data.subarray(0, length), ...(data.length === length ? {deflated: grain.deflated} : {})}
}

/** The footer repeats the header with the grain directory's place; it must describe the same disk. */
function checkFooter(footer: Buffer, h: SparseHeader, name: string): void {
  const same = footer.subarray(0, 4).toString('latin1') === 'KDMV' &&
    Number(footer.readBigUInt64LE(12)) === h.capacitySectors &&
    Number(footer.readBigUInt64LE(20)) === h.grainSectors
  if (!same) throw vmdkRefused('VMDK_BAD_MARKER', name, 'its footer does not repeat its header (magic, capacity, grain size)')
}

async function readExactly(r: ExactReader, n: number, name: string): Promise<Buffer> {
  const buf = await r.readUpTo(n)
  if (buf.length < n) throw truncated(r, name)
  return buf
}

async function skipExactly(r: ExactReader, n: number, name: string): Promise<void> {
  if ((await r.skip(n)) < n) throw truncated(r, name)
}

function truncated(r: ExactReader, name: string) {
  return vmdkRefused('VMDK_TRUNCATED', name, `it ends at byte ${r.position}, before its end-of-stream marker`)
}
