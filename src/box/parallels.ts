import {badInput, type ShienError} from '../errors.js'
import {attr, child, children, findDeep, parseUntrustedXml, text} from './xml-tree.js'

/** What the gate learnt from a Parallels disk (`<name>.hdd/` with `DiskDescriptor.xml`). */
export interface ParallelsDiskInfo {
  /** The one image the descriptor names, a plain file name inside the `.hdd` folder. */
  image: string
  /** Virtual size in bytes, from the descriptor's `Disk_size` (sectors). */
  capacityBytes: number
}

const SECTOR = 512
const NIL_GUID = '{00000000-0000-0000-0000-000000000000}'
/** qemu's parallels driver: the old magic, and the one with format extensions (block/parallels.c). */
const MAGICS = ['WithoutFreeSpace', 'WithouFreSpacExt']
const PLAIN_NAME = /^[A-Za-z0-9{][A-Za-z0-9 ._+{}-]*$/
const REPACKAGE = ['Package the VM again with "vagrant package" from the Parallels provider, with its snapshots deleted.']

/**
 * The gate for a Parallels disk's `DiskDescriptor.xml` (untrusted XML): one storage, one image,
 * named plainly inside the `.hdd` folder, and one snapshot with no parent. A descriptor naming
 * a file elsewhere, or a chain of images, is refused: shien converts the image file itself and
 * reads nothing else.
 */
export function checkDiskDescriptor(xml: string, what: string): ParallelsDiskInfo {
  const root = child(parseUntrustedXml(xml, what), 'Parallels_disk_image')
  if (!root) throw refuse('PARALLELS_BAD_DESCRIPTOR', what, 'it has no <Parallels_disk_image> element')
  const sizeText = text(child(child(root, 'Disk_Parameters'), 'Disk_size'))
  if (sizeText === undefined || !/^\d+$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText) * SECTOR)) {
    throw refuse('PARALLELS_BAD_DESCRIPTOR', what, `its Disk_size is "${sizeText ?? ''}", not a number of sectors`)
  }
  const storages = children(child(root, 'StorageData'), 'Storage')
  const images = storages.flatMap((storage) => children(storage, 'Image'))
  if (storages.length !== 1 || images.length !== 1) {
    throw refuse('PARALLELS_BAD_DESCRIPTOR', what, `it lists ${images.length} images in ${storages.length} storages; shien takes a disk of one image (delete the VM's snapshots first)`)
  }
  const shots = children(child(root, 'Snapshots'), 'Shot')
  const parent = text(child(shots[0], 'ParentGUID'))
  if (shots.length > 1 || (parent !== undefined && parent !== NIL_GUID)) {
    throw refuse('PARALLELS_BAD_DESCRIPTOR', what, 'it describes a chain of snapshots; shien takes a disk of one image (delete the VM\'s snapshots first)')
  }
  const file = text(child(images[0], 'File'))
  if (file === undefined || !PLAIN_NAME.test(file) || file.includes('..') || !/\.hds$/i.test(file)) {
    throw refuse('PARALLELS_BAD_IMAGE_PATH', what, `it names the image "${file ?? ''}", which is not an .hds file inside the disk's folder in the box`)
  }
  return {image: file, capacityBytes: Number(sizeText) * SECTOR}
}

/** The gate for the image file itself: a Parallels expanding image, which names no other file. */
export function checkParallelsImage(head: Buffer, name: string): {capacityBytes: number} {
  const magic = head.subarray(0, 16).toString('latin1')
  if (head.length < 64 || !MAGICS.includes(magic)) {
    throw refuse('PARALLELS_NOT_EXPANDING', name, 'it is not a Parallels expanding image (no "WithoutFreeSpace" header); a plain image cannot be converted safely')
  }
  return {capacityBytes: Number(head.readBigUInt64LE(36)) * SECTOR}
}

/** Whether `config.pvs` (untrusted XML) turns on EFI; Arm machines always boot EFI. */
export function parallelsFirmware(xml: string, what: string): 'bios' | 'efi' {
  const efi = text(findDeep(parseUntrustedXml(xml, what), 'EfiEnabled'))
  return efi === '1' || /^true$/i.test(efi ?? '') ? 'efi' : 'bios'
}

/** The VM's name in `config.pvs`, if it says. */
export function parallelsName(xml: string, what: string): string | undefined {
  const identification = findDeep(parseUntrustedXml(xml, what), 'Identification')
  return text(child(identification, 'VmName')) ?? attr(identification, 'name')
}

function refuse(code: string, what: string, why: string): ShienError {
  return badInput(code, `The Parallels disk ${what} was refused: ${why}.`, REPACKAGE)
}
