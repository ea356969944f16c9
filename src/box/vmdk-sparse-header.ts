import {badInput, type ShienError} from '../errors.js'
import {BLOCK_SIZE} from '../delta/manifest.js'

/**
 * The numeric fields of a sparse VMDK header (VMware's "Virtual Disk Format 1.1", section
 * "Hosted Sparse Extent Header"), which the block readers need beyond what the gate checks.
 */
export interface SparseHeader {
  version: number
  flags: number
  capacitySectors: number
  grainSectors: number
  /** Grain table entries per grain table. */
  gtEntries: number
  /** Sector of the grain directory, or GD_AT_END (a streamOptimized file's footer has it). */
  gdOffset: bigint
  /** Sectors before the first grain (header, descriptor, and for some writers GD and GTs). */
  overheadSectors: number
  compressAlgorithm: number
}

export const SECTOR = 512
export const GD_AT_END = 0xffffffffffffffffn
export const FLAG_ZERO_GRAIN = 1 << 2
export const FLAG_COMPRESSED = 1 << 16
export const FLAG_MARKERS = 1 << 17
const COMPRESS_DEFLATE = 1
/** The grain size shien reads: 128 sectors, one manifest block per grain. */
export const GRAIN_SECTORS = BLOCK_SIZE / SECTOR

/** Parses the first sector of a sparse VMDK (the gate already checked the magic and descriptor). */
export function parseSparseHeader(sector: Buffer, name: string): SparseHeader {
  if (sector.length < SECTOR) throw vmdkRefused('VMDK_TRUNCATED', name, 'it ends inside its header')
  const h: SparseHeader = {
    version: sector.readUInt32LE(4),
    flags: sector.readUInt32LE(8),
    capacitySectors: Number(sector.readBigUInt64LE(12)),
    grainSectors: Number(sector.readBigUInt64LE(20)),
    gtEntries: sector.readUInt32LE(44),
    gdOffset: sector.readBigUInt64LE(56),
    overheadSectors: Number(sector.readBigUInt64LE(64)),
    compressAlgorithm: sector.readUInt16LE(77),
  }
  if (h.grainSectors !== GRAIN_SECTORS) {
    throw vmdkRefused('VMDK_GRAIN_SIZE', name, `its grains are ${h.grainSectors} sectors; shien reads 128-sector (64 KiB) grains, as VirtualBox and qemu write them`)
  }
  if (h.capacitySectors <= 0 || h.capacitySectors > 2 ** 32) {
    throw vmdkRefused('VMDK_NOT_SPARSE', name, `its capacity of ${h.capacitySectors} sectors is not between 1 sector and 2 TiB`)
  }
  if (!Number.isSafeInteger(h.overheadSectors) || h.overheadSectors < 1) {
    throw vmdkRefused('VMDK_NOT_SPARSE', name, `its header gives ${h.overheadSectors} sectors before the first grain`)
  }
  return h
}

/** True for a header whose grains are deflated and framed by markers (streamOptimized). */
export function isStreamOptimized(h: SparseHeader): boolean {
  return (h.flags & FLAG_COMPRESSED) !== 0 && (h.flags & FLAG_MARKERS) !== 0 && h.compressAlgorithm === COMPRESS_DEFLATE
}

/** A VMDK refused while reading its blocks (exit 3). */
export function vmdkRefused(code: string, name: string, why: string): ShienError {
  return badInput(code, `The disk ${name} was refused: ${why}.`, [
    'Export the VM again (vagrant package, or VirtualBox File > Export Appliance) and push the new box.',
  ])
}
