import {open} from 'node:fs/promises'
import {basename} from 'node:path'

import {badInput, type ShienError} from '../errors.js'

/** The one extent a safe VMDK may have: itself. */
export interface VmdkExtent {
  access: 'RW' | 'RDONLY'
  /** Size of the extent in 512-byte sectors. */
  sectors: number
  type: 'SPARSE'
  file: string
}

/** What the gate learnt from a VMDK it accepted. */
export interface VmdkInfo {
  createType: 'streamOptimized' | 'monolithicSparse'
  /** Virtual disk size in bytes, from the sparse header. */
  capacityBytes: number
  extent: VmdkExtent
}

const SECTOR = 512
const KDMV = Buffer.from('KDMV', 'latin1')
/** The gate never reads more than this of a file: real embedded descriptors are 10 KiB. */
export const VMDK_HEAD_LIMIT = 1024 * 1024

const ACCEPTED_TYPES = new Set(['streamOptimized', 'monolithicSparse'])
const EXTENT_LINE = /^(RW|RDONLY|NOACCESS)\s/i
const SAFE_EXTENT = /^(RW|RDONLY) (\d+) SPARSE "([^"]*)"$/

/**
 * How many bytes from the start of the file the gate needs, given at least its first 512:
 * the sparse header plus the embedded descriptor, or just the header when there is none.
 */
export function vmdkHeadLength(first: Buffer): number {
  if (first.length < SECTOR || !first.subarray(0, 4).equals(KDMV)) return SECTOR
  const end = (readU64(first, 28) + readU64(first, 36)) * SECTOR
  return Number.isSafeInteger(end) && end > SECTOR && end <= VMDK_HEAD_LIMIT ? end : SECTOR
}

/**
 * The security gate: accepts only a binary sparse VMDK whose single extent is the file
 * itself, so `qemu-img convert -f vmdk` can read nothing but this file.
 * `head` is the start of the file (see {@link vmdkHeadLength}); `ownName` is its file name.
 */
export function checkVmdkHeader(head: Buffer, ownName: string): VmdkInfo {
  if (head.length < 4 || !head.subarray(0, 4).equals(KDMV)) throw notBinary(head, ownName)
  if (head.length < SECTOR) throw refuse('VMDK_NOT_SPARSE', ownName, 'it is shorter than a sparse VMDK header')
  const capacitySectors = readU64(head, 12)
  // With a capacity of 0, qemu reads the embedded descriptor as a descriptor file of its own.
  if (capacitySectors === 0) throw refuse('VMDK_NOT_SPARSE', ownName, 'its header gives a capacity of 0, so qemu would read its embedded descriptor as another disk\'s')
  if (!Number.isSafeInteger(capacitySectors * SECTOR)) {
    throw refuse('VMDK_NOT_SPARSE', ownName, 'its header gives an impossible capacity')
  }
  const descriptorOffset = readU64(head, 28)
  const descriptorSize = readU64(head, 36)
  if (descriptorOffset === 0 || descriptorSize === 0) {
    throw refuse('VMDK_NOT_SPARSE', ownName, 'it has no embedded descriptor, so it is one piece of a multi-file VMDK')
  }
  const end = (descriptorOffset + descriptorSize) * SECTOR
  if (!Number.isSafeInteger(end) || end > VMDK_HEAD_LIMIT || end > head.length) {
    throw refuse('VMDK_NOT_SPARSE', ownName, 'its embedded descriptor lies outside the file or is implausibly large')
  }
  const window = head.subarray(descriptorOffset * SECTOR, end)
  // qemu reads the descriptor up to its first NUL, even past descriptorSize: without one
  // inside the window, qemu would see text this check did not.
  const nul = window.indexOf(0)
  if (nul < 0) throw refuse('VMDK_NOT_SPARSE', ownName, 'its embedded descriptor is not NUL-terminated inside its sectors')
  const text = window.subarray(0, nul).toString('latin1')
  checkParentMentions(text, ownName)
  return checkDescriptor(parseDescriptor(text), capacitySectors, ownName)
}

/** Runs the gate on a file on disk, reading only its header and embedded descriptor. */
export async function checkVmdkFile(path: string, ownName = basename(path)): Promise<VmdkInfo> {
  const handle = await open(path, 'r')
  try {
    const first = Buffer.alloc(SECTOR)
    const {bytesRead} = await handle.read(first, 0, SECTOR, 0)
    const want = vmdkHeadLength(first.subarray(0, bytesRead))
    if (want <= bytesRead) return checkVmdkHeader(first.subarray(0, bytesRead), ownName)
    const head = Buffer.alloc(want)
    const more = await handle.read(head, 0, want, 0)
    return checkVmdkHeader(head.subarray(0, more.bytesRead), ownName)
  } finally {
    await handle.close()
  }
}

interface Descriptor {
  values: Map<string, string>
  extents: string[]
}

function parseDescriptor(text: string): Descriptor {
  const values = new Map<string, string>()
  const extents: string[] = []
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    if (EXTENT_LINE.test(line)) {
      extents.push(line)
      continue
    }
    const eq = line.indexOf('=')
    if (eq > 0) values.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1'))
  }
  return {values, extents}
}

/** qemu finds these keys with strstr, comments included, so the raw text is checked, not parsed lines. */
export function checkParentMentions(text: string, ownName: string): void {
  const hint = /parentFileNameHint\s*=\s*"?([^"\n]*)/.exec(text)
  if (text.includes('parentFileNameHint')) {
    throw refuse('VMDK_HAS_PARENT', ownName, `it names a parent disk "${hint?.[1] ?? ''}", which would be read too`)
  }
  const cids = text.match(/parentCID[^\n]*/g) ?? []
  const other = cids.find((line) => !/^parentCID\s*=\s*ffffffff\s*$/i.test(line.trim()))
  if (cids.length === 0 || other !== undefined) {
    throw refuse('VMDK_HAS_PARENT', ownName, `its descriptor says "${other ?? 'no parentCID'}" instead of parentCID=ffffffff, so it is a delta of another disk`)
  }
}

function checkDescriptor({values, extents}: Descriptor, capacitySectors: number, ownName: string): VmdkInfo {
  const createType = values.get('createType') ?? '(none)'
  if (!ACCEPTED_TYPES.has(createType)) {
    throw refuse('VMDK_NOT_SPARSE', ownName, `its createType is "${createType}", not streamOptimized or monolithicSparse`)
  }
  if (extents.length !== 1) {
    throw refuse('VMDK_BAD_EXTENT', ownName, `its descriptor has ${extents.length} extent lines; only one, the file itself, is allowed`)
  }
  const match = SAFE_EXTENT.exec(extents[0].replace(/\s+/g, ' '))
  if (!match || match[3] !== ownName) {
    throw refuse('VMDK_BAD_EXTENT', ownName, `its extent "${extents[0]}" is not 'RW <sectors> SPARSE "${ownName}"', so it would read another file`)
  }
  const sectors = Number(match[2])
  if (sectors !== capacitySectors) {
    throw refuse('VMDK_BAD_EXTENT', ownName, `its extent has ${sectors} sectors but its header says ${capacitySectors}`)
  }
  return {
    createType: createType as VmdkInfo['createType'],
    capacityBytes: capacitySectors * SECTOR,
    extent: {access: match[1] as VmdkExtent['access'], sectors, type: 'SPARSE', file: match[3]},
  }
}

function notBinary(head: Buffer, ownName: string): ShienError {
  // qemu-img pads descriptor files with NUL bytes up to a sector.
  const start = head.subarray(0, SECTOR).toString('latin1').split('\0')[0]
  if (/^[\t\n\r\x20-\x7e]*$/.test(start) && /createType|DescriptorFile|\b(RW|RDONLY)\s+\d+/i.test(start)) {
    return refuse(
      'VMDK_TEXT_DESCRIPTOR', ownName,
      'it is a text descriptor, not a disk image. A descriptor can point at any file on the blade (for example /etc/shadow), and converting it would copy that file into your image',
    )
  }
  return refuse('VMDK_NOT_SPARSE', ownName, 'it does not start with the sparse VMDK magic "KDMV"')
}

/** A VMDK refused by the gate (exit 3), with how to make one it accepts. */
export function refuse(code: string, ownName: string, why: string): ShienError {
  return badInput(code, `The disk ${ownName} was refused: ${why}.`, [
    'Export the VM again from VirtualBox (File > Export Appliance, or "vagrant package"): it writes a streamOptimized VMDK.',
    'Or convert the disk yourself: qemu-img convert -O vmdk -o subformat=streamOptimized DISK out.vmdk',
  ])
}

export function readU64(buf: Buffer, offset: number): number {
  return Number(buf.readBigUInt64LE(offset))
}
