import {rm} from 'node:fs/promises'
import {posix} from 'node:path'
import {deflateSync} from 'node:zlib'

import {DeltaWriter, type DeltaRecord} from '../delta/delta-file.js'
import type {BlockManifest} from '../delta/manifest.js'
import {readBoxEntries} from './box-tar.js'
import type {DiskBlock, DiskBlocks} from './disk-blocks.js'
import type {BoxDisk} from './inspect.js'
import {vmdkStreamBlocks} from './vmdk-stream-blocks.js'

/** What a delta holds, for the push's messages and its --json result. */
export interface DeltaStats {
  /** Size of the delta file: what goes to the blade. */
  bytes: number
  /** Blocks whose data changed (sent as raw or deflated bytes) and blocks that became zero. */
  changedBlocks: number
  zeroedBlocks: number
  virtualSize: number
  /** The new disk's hash (docs/delta.md), which the blade checks the overlay against. */
  newDiskHash: Buffer
}

export interface DeltaOptions {
  signal?: AbortSignal
  /** Bytes of the virtual disk read so far. */
  onProgress?: (bytes: number, total: number) => void
}

const EMPTY = Buffer.alloc(0)
/** How often progress is reported, in blocks (64 MiB). */
const PROGRESS_EVERY = 1024

/**
 * Writes the delta of a disk against a base's manifest into `path`: each block whose hash
 * differs from the base's, in order, and the new disk's hash. Holds one block at a time. On
 * failure the file is removed.
 */
export async function writeDelta(blocks: DiskBlocks, base: BlockManifest, path: string, o: DeltaOptions = {}): Promise<DeltaStats> {
  const writer = await DeltaWriter.create(path, {virtualSize: base.virtualSize, baseDiskHash: base.diskHash})
  let changedBlocks = 0
  let zeroedBlocks = 0
  try {
    for await (const block of blocks) {
      if (block.index >= base.blockCount) throw new RangeError(`The disk has a block ${block.index} past the base's ${base.blockCount} blocks.`)
      const record = recordFor(block, base)
      if (record) {
        await writer.add(record)
        if (record.kind === 'zero') zeroedBlocks++
        else changedBlocks++
      }
      if (block.index % PROGRESS_EVERY === 0) o.onProgress?.(block.index * base.blockSize, base.virtualSize)
    }
    const manifest = blocks.manifest()
    if (manifest.virtualSize !== base.virtualSize) {
      throw new RangeError(`The disk is ${manifest.virtualSize} bytes, the base ${base.virtualSize}.`)
    }
    const bytes = await writer.finish(manifest.diskHash)
    o.onProgress?.(base.virtualSize, base.virtualSize)
    return {bytes, changedBlocks, zeroedBlocks, virtualSize: base.virtualSize, newDiskHash: manifest.diskHash}
  } catch (error) {
    await writer.abandon()
    await rm(path, {force: true})
    throw error
  }
}

/** The record a block needs: none when the base has the same bytes there. */
export function recordFor(block: DiskBlock, base: BlockManifest): DeltaRecord | undefined {
  if (block.zero) return base.isZero(block.index) ? undefined : {index: block.index, kind: 'zero', payload: EMPTY}
  const baseHash = base.blockHash(block.index)
  if (baseHash && block.hash?.equals(baseHash)) return undefined
  if (!block.data) throw new Error(`Internal error: data block ${block.index} came without its bytes.`)
  // A grain the VMDK stores deflated goes as it is; anything else is deflated here. Raw when
  // deflating does not make it smaller (random or encrypted data).
  const deflated = block.deflated ?? deflateSync(block.data, {level: 6})
  return deflated.length < block.length
    ? {index: block.index, kind: 'deflate', payload: deflated}
    : {index: block.index, kind: 'raw', payload: block.data}
}

/**
 * The delta of a box's disk (a streamOptimized VMDK, read inside the box's tar as it is
 * unpacked, with no temporary copy) against a base's manifest.
 */
export async function writeBoxDelta(boxPath: string, disk: BoxDisk, base: BlockManifest, path: string, o: DeltaOptions = {}): Promise<DeltaStats> {
  let stats: DeltaStats | undefined
  await readBoxEntries(boxPath, {
    signal: o.signal,
    onEntry: async (entry, body) => {
      if (entry.name !== disk.entry || stats) return
      stats = await writeDelta(vmdkStreamBlocks(body, posix.basename(disk.entry), {signal: o.signal}), base, path, o)
    },
  })
  if (!stats) throw new Error(`The box ${boxPath} no longer holds ${disk.entry}.`)
  return stats
}
