import {createReadStream} from 'node:fs'
import {open, type FileHandle} from 'node:fs/promises'
import {basename} from 'node:path'

import {type BlockManifest, blockLengthOf} from '../delta/manifest.js'
import {ManifestBuilder} from '../delta/manifest-builder.js'
import {type DiskBlock, type DiskBlocks, diskBlocks} from './disk-blocks.js'
import {checkVmdkFile} from './vmdk-gate.js'
import {FLAG_COMPRESSED, FLAG_ZERO_GRAIN, GD_AT_END, GRAIN_SECTORS, SECTOR, isStreamOptimized, parseSparseHeader, vmdkRefused, type SparseHeader} from './vmdk-sparse-header.js'
import {vmdkStreamBlocks} from './vmdk-stream-blocks.js'

/** Grain table entries per table that the reader accepts (the spec's is 512). */
const MAX_GT_ENTRIES = 4096

/**
 * Reads a sparse VMDK file: a streamOptimized one front to back (vmdkStreamBlocks), a
 * monolithicSparse one through its grain directory and tables, one grain table and one grain
 * in memory at a time. Yields 64 KiB blocks in virtual-disk order.
 */
export function vmdkFileBlocks(path: string, o: {name?: string; signal?: AbortSignal} = {}): DiskBlocks {
  return diskBlocks(() => readFile(path, o.name ?? basename(path)), o.signal)
}

async function* readFile(path: string, name: string): AsyncGenerator<DiskBlock, BlockManifest> {
  const info = await checkVmdkFile(path, name)
  const handle = await open(path, 'r')
  try {
    const h = parseSparseHeader(await readAt(handle, 0, SECTOR, name), name)
    if (info.createType === 'streamOptimized' || isStreamOptimized(h)) {
      const file = createReadStream(path)
      try {
        const inner = vmdkStreamBlocks(file, name)
        yield* inner
        return inner.manifest()
      } finally {
        file.destroy()
      }
    }
    if ((h.flags & FLAG_COMPRESSED) !== 0) throw vmdkRefused('VMDK_NOT_SPARSE', name, 'its grains are compressed but it is not streamOptimized')
    return yield* readSparse(handle, h, info.capacityBytes, name)
  } finally {
    await handle.close()
  }
}

async function* readSparse(handle: FileHandle, h: SparseHeader, capacity: number, name: string): AsyncGenerator<DiskBlock, BlockManifest> {
  if (h.gdOffset === GD_AT_END || h.gdOffset === 0n) throw vmdkRefused('VMDK_NOT_SPARSE', name, 'its header does not say where its grain directory is')
  if (h.gtEntries < 1 || h.gtEntries > MAX_GT_ENTRIES) throw vmdkRefused('VMDK_NOT_SPARSE', name, `its grain tables have ${h.gtEntries} entries`)
  const fileSize = (await handle.stat()).size
  const builder = new ManifestBuilder(capacity)
  const tables = Math.ceil(builder.blockCount / h.gtEntries)
  const directory = await readAt(handle, Number(h.gdOffset) * SECTOR, tables * 4, name)
  for (let t = 0; t < tables; t++) {
    const gtSector = directory.readUInt32LE(t * 4)
    const entries = Math.min(h.gtEntries, builder.blockCount - t * h.gtEntries)
    const table = gtSector === 0 ? undefined : await readAt(handle, gtSector * SECTOR, entries * 4, name)
    for (let e = 0; e < entries; e++) {
      const sector = table?.readUInt32LE(e * 4) ?? 0
      if (sector === 0 || (sector === 1 && (h.flags & FLAG_ZERO_GRAIN) !== 0)) {
        yield builder.addZero()
        continue
      }
      const length = blockLengthOf(capacity, builder.nextIndex)
      if (sector < h.overheadSectors || sector * SECTOR + length > fileSize) {
        throw vmdkRefused('VMDK_BAD_GRAIN', name, `the grain for sector ${builder.nextIndex * GRAIN_SECTORS} is at sector ${sector}, outside the file's grains`)
      }
      const data = await readAt(handle, sector * SECTOR, length, name)
      const block = builder.add(data)
      yield block.zero ? block : {...block, data}
    }
  }
  return builder.finish()
}

async function readAt(handle: FileHandle, position: number, length: number, name: string): Promise<Buffer> {
  const buf = Buffer.alloc(length)
  const {bytesRead} = await handle.read(buf, 0, length, position)
  if (bytesRead < length) throw vmdkRefused('VMDK_TRUNCATED', name, `it ends before byte ${position + length}, where its grain directory says data is`)
  return buf
}
