import {mkdtemp, open, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {badInput} from '../errors.js'
import {type ImageLayer, qemuImgInfo} from '../qemu-img/qemu-img.js'
import {qemuImgExtract, qemuImgMap, type MapRange} from '../qemu-img/ranges.js'
import {BLOCK_SIZE, type BlockManifest, blockLengthOf} from './manifest.js'
import {ManifestBuilder} from './manifest-builder.js'

export interface ImageManifestOptions {
  format: 'qcow2' | 'raw'
  signal?: AbortSignal
  /** `user` where qemu-img may live outside the clean PATH (an instructor's machine). */
  env?: 'clean' | 'user'
  /** Where the private scratch folder goes (default: the system's temp folder). */
  tmpDir?: string
  /** Most bytes of data extracted at once, so scratch space stays bounded (default 64 MiB). */
  chunkBytes?: number
  /** Bytes of the virtual disk one `qemu-img map` covers (default 1 GiB). */
  windowBytes?: number
  /**
   * For a qcow2 overlay: the absolute path of the standalone qcow2 it must be based on. The
   * image's header must name exactly it, with its format declared; it is then read through it,
   * opened as named here (qcow2, nothing behind it). Without this a backing file is refused.
   */
  backing?: string
}

/**
 * The manifest of an image's virtual disk, with qemu-img: `map` finds the ranges that read as
 * zeroes, and the rest is extracted as raw, at most `chunkBytes` at a time, into a private
 * scratch folder and hashed block by block. Memory and scratch space stay flat in the disk's
 * size. Runs qemu-img as this process's user; an image with a backing or data file is refused
 * (a base box stands alone) unless `o.backing` names the one base it must be an overlay of.
 * qemu-img failures come out as QemuImgError.
 */
export async function manifestOfImage(path: string, o: ImageManifestOptions): Promise<BlockManifest> {
  const [layer] = await qemuImgInfo(path, {format: o.format, signal: o.signal, env: o.env})
  if (o.backing !== undefined) checkOverlay(path, layer, o.backing)
  else if (layer.backingFile !== undefined || layer.dataFile !== undefined) {
    throw badInput('IMAGE_NOT_STANDALONE', `Cannot compute the block manifest of ${path}: it has a ${layer.backingFile ? `backing file (${layer.backingFile})` : 'data file'}.`, [
      'Use a standalone image: qemu-img convert -O qcow2 IMAGE standalone.qcow2',
    ])
  }
  const builder = new ManifestBuilder(layer.virtualSize)
  const window = roundToBlocks(o.windowBytes ?? 2 ** 30)
  const chunk = roundToBlocks(o.chunkBytes ?? 64 * 2 ** 20)
  const scratch = await mkdtemp(join(o.tmpDir ?? tmpdir(), 'shien-manifest-'))
  try {
    for (let start = 0; start < layer.virtualSize; start += window) {
      o.signal?.throwIfAborted()
      const length = Math.min(window, layer.virtualSize - start)
      const zero = zeroBlocks(await qemuImgMap(path, {start, length}, o), start, length, layer.virtualSize)
      await addWindow(builder, zero, {path, scratch, chunk, o})
    }
  } finally {
    await rm(scratch, {recursive: true, force: true})
  }
  return builder.finish()
}

function checkOverlay(path: string, layer: ImageLayer, backing: string): void {
  if (layer.dataFile !== undefined || layer.backingFile !== backing || layer.backingFormat !== 'qcow2') {
    throw badInput('IMAGE_NOT_OVERLAY', `Cannot compute the block manifest of ${path}: it is not a qcow2 overlay of ${backing} with its format declared.`)
  }
}

/**
 * For each block of the window, whether the map says every byte of it reads as zero. A block
 * the map does not fully cover is read, so a short or odd map costs time, never correctness.
 */
export function zeroBlocks(ranges: MapRange[], start: number, length: number, virtualSize: number): Uint8Array {
  const first = start / BLOCK_SIZE
  const count = Math.ceil(length / BLOCK_SIZE)
  const covered = new Float64Array(count)
  for (const r of ranges) {
    if (!r.zero) continue
    const from = Math.max(r.start, start)
    const to = Math.min(r.start + r.length, start + length)
    for (let b = Math.floor((from - start) / BLOCK_SIZE); b < count && (first + b) * BLOCK_SIZE < to; b++) {
      const blockStart = (first + b) * BLOCK_SIZE
      covered[b] += Math.max(0, Math.min(to, blockStart + BLOCK_SIZE) - Math.max(from, blockStart))
    }
  }
  return Uint8Array.from(covered, (bytes, b) => (bytes === blockLengthOf(virtualSize, first + b) ? 1 : 0))
}

interface WindowContext {
  path: string
  scratch: string
  chunk: number
  o: ImageManifestOptions
}

/** Adds a window's blocks: zero ones directly, runs of the others extracted and read. */
async function addWindow(builder: ManifestBuilder, zero: Uint8Array, c: WindowContext): Promise<void> {
  const maxRun = c.chunk / BLOCK_SIZE
  let b = 0
  while (b < zero.length) {
    if (zero[b] === 1) {
      builder.addZero()
      b++
      continue
    }
    let run = 1
    while (b + run < zero.length && zero[b + run] === 0 && run < maxRun) run++
    await addExtracted(builder, run, c)
    b += run
  }
}

async function addExtracted(builder: ManifestBuilder, blocks: number, c: WindowContext): Promise<void> {
  const offset = builder.nextIndex * BLOCK_SIZE
  const length = Math.min(blocks * BLOCK_SIZE, builder.virtualSize - offset)
  const file = join(c.scratch, 'range.raw')
  await qemuImgExtract(c.path, {offset, length}, file, c.o)
  const handle = await open(file, 'r')
  try {
    const buf = Buffer.alloc(BLOCK_SIZE)
    for (let done = 0; done < length;) {
      const want = blockLengthOf(builder.virtualSize, builder.nextIndex)
      const {bytesRead} = await handle.read(buf, 0, want, done)
      if (bytesRead !== want) throw new Error(`qemu-img wrote ${done + bytesRead} of ${length} bytes at offset ${offset} of ${c.path}.`)
      builder.add(buf.subarray(0, want))
      done += want
    }
  } finally {
    await handle.close()
    await rm(file, {force: true})
  }
}

function roundToBlocks(bytes: number): number {
  return Math.max(BLOCK_SIZE, Math.floor(bytes / BLOCK_SIZE) * BLOCK_SIZE)
}
