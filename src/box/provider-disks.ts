import {posix} from 'node:path'

import {badInput} from '../errors.js'
import type {BoxEntry} from './entry-name.js'
import type {OvfController, OvfDisk} from './ovf.js'
import {checkDiskDescriptor, checkParallelsImage} from './parallels.js'
import {checkQcow2Header} from './qcow2-gate.js'
import {checkSparseExtent, checkSplitDescriptor, looksLikeDescriptor} from './vmdk-descriptor.js'
import {checkVmdkHeader, type VmdkInfo} from './vmdk-gate.js'

/** How qemu-img must read a disk: always named (`-f`), never probed. */
export type BoxDiskFormat = 'vmdk' | 'parallels' | 'qcow2'

/** One disk of the box's machine, checked by its format's gate. */
export interface BoxDisk {
  /** The machine's name for it: the OVF disk id, the VMX device, the `.hdd` folder, `box.img`. */
  diskId: string
  /** The file as the machine's configuration names it. */
  file: string
  /** The entry qemu-img opens: the VMDK or split descriptor, the `.hds` image, `box.img`. */
  entry: string
  format: BoxDiskFormat
  /** streamOptimized, monolithicSparse, twoGbMaxExtentSparse, parallels or qcow2. */
  subformat: string
  /** Virtual size in bytes, from the disk's own header (or descriptor). */
  capacityBytes: number
  /** Every entry of the box the disk reads: the one file, or a descriptor and its extents. */
  files: string[]
  /** For a single-file VMDK, what its gate found (delta pushes read these). */
  vmdk?: VmdkInfo
  controller?: OvfController
  addressOnParent?: number
}

/** What a box's files give the gates: entries in order, small texts whole, and the heads of the rest. */
export interface BoxFiles {
  entries: BoxEntry[]
  texts: Map<string, string>
  heads: Map<string, Buffer>
}

const REPACKAGE = ['Package the box again with "vagrant package" and inspect that file.']

/** A VirtualBox disk: the file its OVF names, a single-file sparse VMDK. */
export function virtualboxDisk(disk: OvfDisk, ovfEntry: string, files: BoxFiles): BoxDisk {
  const entry = posix.normalize(posix.join(posix.dirname(ovfEntry), disk.file))
  const vmdk = checkVmdkHeader(headOf(files, entry, `${ovfEntry} names ${entry} as disk "${disk.diskId}"`), posix.basename(entry))
  return {
    diskId: disk.diskId, file: disk.file, entry, format: 'vmdk', subformat: vmdk.createType, capacityBytes: vmdk.capacityBytes,
    files: [entry], vmdk, controller: disk.controller, addressOnParent: disk.addressOnParent,
  }
}

/**
 * A VMware disk: a single-file sparse VMDK, or a split one (`twoGbMaxExtentSparse`) whose text
 * descriptor lists sparse extents beside it. `used` collects the entries other disks read, so
 * no file serves twice.
 */
export function vmwareDisk(device: string, file: string, vmxEntry: string, files: BoxFiles, used: Set<string>): BoxDisk {
  const entry = posix.join(posix.dirname(vmxEntry), file)
  const head = headOf(files, entry, `${vmxEntry} attaches ${entry} as ${device}`)
  const base = {diskId: device, file, entry, format: 'vmdk' as const}
  let disk: BoxDisk
  if (looksLikeDescriptor(head)) {
    const split = checkSplitDescriptor(head, file)
    const extents = split.extents.map((extent) => {
      const path = posix.join(posix.dirname(entry), extent.file)
      checkSparseExtent(headOf(files, path, `The split disk ${file} lists the extent ${extent.file}`), extent, file)
      return path
    })
    disk = {...base, subformat: split.createType, capacityBytes: split.capacityBytes, files: [entry, ...extents]}
  } else {
    const vmdk = checkVmdkHeader(head, file)
    disk = {...base, subformat: vmdk.createType, capacityBytes: vmdk.capacityBytes, files: [entry], vmdk}
  }
  for (const path of disk.files) {
    if (used.has(path)) throw badInput('VMDK_BAD_EXTENT', `${path} in the box is read by two disks of the machine; each disk file serves one disk.`, REPACKAGE)
    used.add(path)
  }
  return disk
}

/** A Parallels disk: the `.hdd` folder's descriptor, and the one expanding image it names inside the folder. */
export function parallelsDisk(hddFolder: string, files: BoxFiles): {disk: BoxDisk; declaredBytes: number} {
  const descriptorEntry = `${hddFolder}/DiskDescriptor.xml`
  const descriptor = files.texts.get(descriptorEntry)
  if (descriptor === undefined) throw badInput('BOX_MISSING_DISK', `The Parallels disk ${hddFolder} has no DiskDescriptor.xml.`, REPACKAGE)
  const {image, capacityBytes: declaredBytes} = checkDiskDescriptor(descriptor, descriptorEntry)
  const entry = `${hddFolder}/${image}`
  const {capacityBytes} = checkParallelsImage(headOf(files, entry, `${descriptorEntry} names the image ${image}`), entry)
  const disk: BoxDisk = {
    diskId: posix.basename(hddFolder), file: image, entry, format: 'parallels', subformat: 'parallels', capacityBytes,
    files: [descriptorEntry, entry],
  }
  return {disk, declaredBytes}
}

/** A libvirt or qemu box's `box.img`: a standalone qcow2. */
export function qcow2Disk(entry: string, files: BoxFiles): BoxDisk {
  const {capacityBytes} = checkQcow2Header(headOf(files, entry, `The box names ${entry} as its disk`), entry)
  return {diskId: entry, file: entry, entry, format: 'qcow2', subformat: 'qcow2', capacityBytes, files: [entry]}
}

function headOf(files: BoxFiles, entry: string, named: string): Buffer {
  const head = files.heads.get(entry)
  if (head) return head
  const listed = files.entries.some((e) => e.name === entry)
  throw badInput('BOX_MISSING_DISK', listed ? `${named}, but that entry is not a disk image.` : `${named}, but the box has no such file.`, REPACKAGE)
}
