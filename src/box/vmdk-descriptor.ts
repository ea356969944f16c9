import {checkParentMentions, readU64, refuse} from './vmdk-gate.js'

/** One extent of a split VMDK: a sparse extent file beside its descriptor. */
export interface SplitExtent {
  /** The extent's file name, a plain name in the descriptor's folder. */
  file: string
  sectors: number
}

/** What the gate learnt from a split VMDK (VMware's `twoGbMaxExtentSparse`) it accepted. */
export interface SplitVmdkInfo {
  createType: 'twoGbMaxExtentSparse'
  capacityBytes: number
  extents: SplitExtent[]
}

const SECTOR = 512
const KDMV = Buffer.from('KDMV', 'latin1')
/** Text descriptors are a few hundred bytes; qemu itself reads at most a few MiB of one. */
export const DESCRIPTOR_LIMIT = 64 * 1024
const EXTENT_LINE = /^(RW|RDONLY|NOACCESS)\s/i
const SPARSE_EXTENT = /^(RW|RDONLY) (\d+) SPARSE "([^"]*)"$/
/** A file name qemu opens beside the descriptor and nothing else: no folder, no `..`, no drive. */
const PLAIN_NAME = /^[A-Za-z0-9][A-Za-z0-9 ._+-]*$/

/** True when the start of a file reads as a VMDK text descriptor rather than a binary extent. */
export function looksLikeDescriptor(head: Buffer): boolean {
  const start = head.subarray(0, SECTOR).toString('latin1').split('\0')[0]
  return /^[\t\n\r\x20-\x7e]*$/.test(start) && /createType|DescriptorFile/.test(start)
}

/**
 * The gate for a split VMDK's text descriptor: every extent it lists is a SPARSE extent whose
 * file is a plain name in the same folder, listed once, and nothing else (no FLAT or ZERO
 * extents, no paths, no parent). `text` is the descriptor file's content; qemu stops at the
 * first NUL, and so does this.
 */
export function checkSplitDescriptor(text: Buffer, ownName: string): SplitVmdkInfo {
  if (text.length > DESCRIPTOR_LIMIT) throw refuse('VMDK_BAD_EXTENT', ownName, `its descriptor is ${text.length} bytes, far more than a descriptor holds`)
  const body = text.toString('latin1').split('\0')[0]
  checkParentMentions(body, ownName)
  // qemu takes the first "createType" in the text, comments included.
  const createType = /createType\s*=\s*"([^"]*)"/.exec(body.slice(body.indexOf('createType')))?.[1] ?? '(none)'
  if (createType !== 'twoGbMaxExtentSparse') {
    throw refuse('VMDK_NOT_SPARSE', ownName, `its descriptor's createType is "${createType}"; a split VMDK must be twoGbMaxExtentSparse`)
  }
  const lines = body.split('\n').map((line) => line.trim()).filter((line) => EXTENT_LINE.test(line))
  if (lines.length === 0) throw refuse('VMDK_BAD_EXTENT', ownName, 'its descriptor lists no extent')
  const extents: SplitExtent[] = []
  for (const line of lines) {
    const match = SPARSE_EXTENT.exec(line.replace(/[ \t\r]+/g, ' '))
    if (!match) {
      throw refuse('VMDK_BAD_EXTENT', ownName, `its extent "${line}" is not a SPARSE extent ('RW <sectors> SPARSE "<file>"'): a FLAT or other extent reads whatever file it names`)
    }
    const file = match[3]
    if (!PLAIN_NAME.test(file) || file.includes('..')) {
      throw refuse('VMDK_BAD_EXTENT', ownName, `its extent names "${file}", which is not a file beside the descriptor inside the box`)
    }
    if (file === ownName) throw refuse('VMDK_BAD_EXTENT', ownName, 'its extent names the descriptor itself')
    if (extents.some((e) => e.file === file)) throw refuse('VMDK_BAD_EXTENT', ownName, `its descriptor lists the extent "${file}" twice`)
    const sectors = Number(match[2])
    if (!Number.isSafeInteger(sectors) || sectors < 1) throw refuse('VMDK_BAD_EXTENT', ownName, `its extent "${file}" has ${match[2]} sectors`)
    extents.push({file, sectors})
  }
  const total = extents.reduce((sum, e) => sum + e.sectors, 0)
  if (!Number.isSafeInteger(total * SECTOR)) throw refuse('VMDK_BAD_EXTENT', ownName, 'its extents add up to an impossible size')
  return {createType, capacityBytes: total * SECTOR, extents}
}

/**
 * The gate for one extent file of a split VMDK: a binary sparse extent (`KDMV`) of the size the
 * descriptor gives. A capacity of 0 would make qemu read the extent's own embedded descriptor
 * as a new descriptor, with extents of its own: refused.
 */
export function checkSparseExtent(head: Buffer, extent: SplitExtent, descriptorName: string): void {
  if (head.length < SECTOR || !head.subarray(0, 4).equals(KDMV)) {
    throw refuse('VMDK_BAD_EXTENT', descriptorName, `its extent ${extent.file} is not a binary sparse extent (no "KDMV" header)`)
  }
  const capacity = readU64(head, 12)
  if (capacity !== extent.sectors) {
    throw refuse('VMDK_BAD_EXTENT', descriptorName, `its extent ${extent.file} holds ${capacity} sectors but the descriptor says ${extent.sectors}`)
  }
}
