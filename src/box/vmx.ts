import {badInput, type ShienError} from '../errors.js'
import type {Architecture} from './architecture.js'

/** One hard disk a VMware machine attaches, by its VMX key. */
export interface VmxDisk {
  /** The device, e.g. `nvme0:0` or `scsi0:0`. */
  device: string
  /** The disk's VMDK, a plain file name beside the VMX. */
  file: string
}

/** What shien needs from a VMware `.vmx` file. */
export interface VmxInfo {
  name: string
  /** `guestOS` as written, e.g. `arm-debian12-64`. */
  guestOS: string | undefined
  /** What `guestOS` says: `arm-*` is arm64, `*-64` amd64; undefined when it does not say. */
  architecture: Architecture | undefined
  cpus: number
  memoryMiB: number
  firmware: 'bios' | 'efi'
  /** Boot order: NVMe, then SCSI, SATA and IDE, each by controller and unit. */
  disks: VmxDisk[]
}

const LINE = /^([A-Za-z0-9_.:-]+)\s*=\s*"([^"]*)"\s*$/
const DISK_KEY = /^(nvme|scsi|sata|ide)(\d+):(\d+)\.filename$/
const BUS_ORDER = ['nvme', 'scsi', 'sata', 'ide']
const PLAIN_NAME = /^[A-Za-z0-9][A-Za-z0-9 ._+-]*$/
const REPACKAGE = ['Package the VM again with "vagrant package" from the VMware provider, with its disks in the VM\'s own folder.']

/**
 * Parses a box's VMX (untrusted): `key = "value"` lines, keys compared without case. Every
 * hard disk it attaches must be a VMDK named plainly beside the VMX (no folder, no `..`): the
 * machine's disks are the box's files and nothing else. CD-ROM images are not disks and may
 * name anything; they are not read.
 */
export function parseVmx(text: string, what: string): VmxInfo {
  const values = new Map<string, string>()
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#') || line.startsWith('.encoding')) return
    const match = LINE.exec(line)
    if (!match) throw malformed(what, `line ${index + 1} is not 'key = "value"'`)
    const key = match[1].toLowerCase()
    if (values.has(key)) throw malformed(what, `it sets ${match[1]} twice`)
    values.set(key, match[2])
  })
  const guestOS = values.get('guestos')
  return {
    name: values.get('displayname') ?? 'unnamed',
    guestOS,
    architecture: vmxArchitecture(guestOS),
    cpus: count(values.get('numvcpus') ?? '1', 'numvcpus', what),
    memoryMiB: count(values.get('memsize') ?? '512', 'memsize', what),
    firmware: /^efi$/i.test(values.get('firmware') ?? '') ? 'efi' : 'bios',
    disks: vmxDisks(values, what),
  }
}

/** VMware's guest OS ids: `arm-` for Arm guests (Fusion on Apple Silicon), `-64` for 64-bit x86. */
export function vmxArchitecture(guestOS: string | undefined): Architecture | undefined {
  if (guestOS === undefined || guestOS === '') return undefined
  if (/^arm-/i.test(guestOS)) return 'arm64'
  return /-64$/i.test(guestOS) ? 'amd64' : undefined
}

function vmxDisks(values: Map<string, string>, what: string): VmxDisk[] {
  const disks: Array<VmxDisk & {order: number[]}> = []
  for (const [key, file] of values) {
    const match = DISK_KEY.exec(key)
    if (!match) continue
    const device = `${match[1]}${match[2]}:${match[3]}`
    if (/^false$/i.test(values.get(`${device}.present`) ?? 'TRUE')) continue
    const type = values.get(`${device}.devicetype`) ?? ''
    // A device with no deviceType is a hard disk to VMware; only CD-ROM drives may name other files.
    if (/cdrom|atapi/i.test(type)) continue
    if (!PLAIN_NAME.test(file) || file.includes('..') || !/\.vmdk$/i.test(file)) {
      throw badInput('VMX_BAD_DISK', `${what} attaches the disk "${file}" (${device}), which is not a VMDK file beside it in the box: shien reads nothing outside the box.`, REPACKAGE)
    }
    disks.push({device, file, order: [BUS_ORDER.indexOf(match[1]), Number(match[2]), Number(match[3])]})
  }
  disks.sort((a, b) => a.order[0] - b.order[0] || a.order[1] - b.order[1] || a.order[2] - b.order[2])
  return disks.map(({device, file}) => ({device, file}))
}

function count(value: string, key: string, what: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw malformed(what, `${key} is "${value}", not a positive whole number`)
  return Number(value)
}

function malformed(what: string, why: string): ShienError {
  return badInput('VMX_MALFORMED', `${what} cannot be used: ${why}.`, REPACKAGE)
}
