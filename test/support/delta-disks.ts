// Disks for the delta-push tests, made in memory without qemu-img: the pattern disk as a base,
// a student's disk derived from it, either as a streamOptimized VMDK, and applying a delta
// file to a raw copy of the base in plain JS (what the blade does on an overlay).
import {randomBytes} from 'node:crypto'
import {readFile} from 'node:fs/promises'

import {readDelta} from '../../src/delta/delta-file.js'
import {BLOCK_SIZE} from '../../src/delta/manifest.js'
import {PATTERN, writePatternDisk} from './pattern-disk.js'
import {type StreamItem, streamVmdk} from './stream-vmdk.js'

const M = 1024 * 1024

/** The pattern disk's raw bytes (10 MiB and 3 sectors). */
export async function patternDisk(dir: string): Promise<Buffer> {
  return readFile(await writePatternDisk(dir, 'base.raw'))
}

/** Which blocks {@link deriveDisk} changes, and how. */
export const CHANGED = {
  /** Data edited in place: a data block that stays data. */
  edited: 0,
  /** Data in the base, all zero now. */
  zeroed: (2 * M + 512 * 1024) / BLOCK_SIZE,
  /** Zero in the base, random (incompressible) data now. */
  filled: (7 * M) / BLOCK_SIZE,
  /** The last block, 1536 bytes, edited. */
  last: Math.floor(PATTERN.size / BLOCK_SIZE),
}

/** A student's disk: the base with four blocks changed (see {@link CHANGED}). */
export function deriveDisk(base: Buffer): Buffer {
  const disk = Buffer.from(base)
  disk.write('student was here', CHANGED.edited * BLOCK_SIZE + 100)
  disk.fill(0, CHANGED.zeroed * BLOCK_SIZE, (CHANGED.zeroed + 1) * BLOCK_SIZE)
  randomBytes(BLOCK_SIZE).copy(disk, CHANGED.filled * BLOCK_SIZE)
  disk.write('end', disk.length - 10)
  return disk
}

/**
 * A streamOptimized VMDK of a raw disk, one deflated grain per block that is not all zero (the
 * last grain padded to 64 KiB, as qemu-img and VirtualBox write it), grain tables and a footer
 * as VirtualBox ends its exports.
 */
export function vmdkOfRaw(raw: Buffer, name = 'box-disk001.vmdk'): Buffer {
  const items: StreamItem[] = []
  for (let at = 0; at < raw.length; at += BLOCK_SIZE) {
    const block = raw.subarray(at, at + BLOCK_SIZE)
    if (block.every((b) => b === 0)) continue
    const grain = block.length === BLOCK_SIZE ? block : Buffer.concat([block, Buffer.alloc(BLOCK_SIZE - block.length)])
    items.push({grain: at / 512, data: grain})
  }
  items.push({marker: 1, sectors: 4}, {marker: 2, sectors: 1})
  return streamVmdk({name, capacitySectors: raw.length / 512, items})
}

/** Applies a delta file to a copy of the base's raw bytes, reading it with the strict reader. */
export async function applyDelta(base: Buffer, deltaPath: string): Promise<{disk: Buffer; kinds: Map<number, string>; payloads: Map<number, Buffer>}> {
  const {header, records} = await readDelta(deltaPath)
  if (header.virtualSize !== base.length) throw new Error(`delta for ${header.virtualSize} bytes, base has ${base.length}`)
  const disk = Buffer.from(base)
  const kinds = new Map<number, string>()
  const payloads = new Map<number, Buffer>()
  for await (const record of records) {
    const at = record.index * BLOCK_SIZE
    const end = Math.min(disk.length, at + BLOCK_SIZE)
    if (record.data) record.data.copy(disk, at)
    else disk.fill(0, at, end)
    kinds.set(record.index, record.kind)
    payloads.set(record.index, record.payload)
  }
  return {disk, kinds, payloads}
}
