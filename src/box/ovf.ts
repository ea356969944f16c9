import {badInput} from '../errors.js'
import {quantityInBytes} from './ovf-units.js'
import {attr, child, children, findDeep, parseUntrustedXml, text, type XmlNode} from './xml-tree.js'

/** The storage controller a disk hangs off, from the disk Item's `Parent`. */
export interface OvfController {
  kind: 'ide' | 'scsi' | 'virtio-scsi' | 'sata' | 'nvme' | 'other'
  /** CIM ResourceType of the controller Item: 5 IDE, 6 SCSI, 20 other storage (VirtualBox: SATA, NVMe). */
  resourceType: number
  /** ResourceSubType as written, e.g. `AHCI`, `PIIX4`, `lsilogic`. */
  subType: string | undefined
}

/** One virtual disk of the VM, resolved the way VirtualBox links it. */
export interface OvfDisk {
  /** `ovf:diskId` in the DiskSection. */
  diskId: string
  /** The disk's file, relative to the OVF (`ovf:href` of the referenced File). */
  file: string
  /** Virtual size in bytes (`ovf:capacity` times `ovf:capacityAllocationUnits`). */
  capacityBytes: number
  /** `ovf:format`, e.g. `http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized`. */
  format: string | undefined
  controller: OvfController | undefined
  /** Slot on the controller (`AddressOnParent`). */
  addressOnParent: number | undefined
}

/** What shien needs from a box's OVF descriptor. */
export interface OvfInfo {
  name: string
  /** VirtualBox OS type (e.g. `Ubuntu_64`), else the OperatingSystemSection's description. */
  osType: string | undefined
  cpus: number
  memoryMiB: number
  firmware: 'bios' | 'efi'
  /**
   * VirtualBox 7.1's platform (settings 1.20): `<Platform architecture="x86|ARM">` inside
   * `<vbox:Machine>` (TMachine/TPlatform in VirtualBox-settings.xsd). Undefined in older exports.
   */
  platform: string | undefined
  /** In the order of the VM's hardware items (boot disk first for VirtualBox exports). */
  disks: OvfDisk[]
}

const RT = {cpu: 3, memory: 4, ide: 5, scsi: 6, disk: 17, otherStorage: 20} as const
const HARDWARE_ITEMS = ['Item', 'StorageItem', 'EthernetPortItem']

/** Parses a box's OVF (untrusted). Throws a `badInput` ShienError naming what is wrong. */
export function parseOvf(xml: string, what = 'box.ovf'): OvfInfo {
  const envelope = child(parseUntrustedXml(xml, what), 'Envelope')
  if (!envelope) throw broken(what, 'it has no <Envelope> element, so it is not an OVF descriptor')
  const system = virtualSystem(envelope, what)
  const hardware = child(system, 'VirtualHardwareSection')
  const items = HARDWARE_ITEMS.flatMap((name) => children(hardware, name))
  const machine = child(system, 'Machine')
  return {
    name: attr(machine, 'name') ?? attr(system, 'id') ?? 'unnamed',
    osType: attr(machine, 'OSType') ?? osSection(system),
    cpus: cpuCount(items, machine, what),
    memoryMiB: memoryMiB(items, machine, what),
    firmware: firmware(machine, hardware),
    platform: attr(child(machine, 'Platform'), 'architecture'),
    disks: disks(envelope, items, what),
  }
}

function virtualSystem(envelope: XmlNode, what: string): XmlNode {
  const systems = [
    ...children(envelope, 'VirtualSystem'),
    ...children(envelope, 'VirtualSystemCollection').flatMap((c) => children(c, 'VirtualSystem')),
  ]
  if (systems.length !== 1) {
    throw broken(what, `it describes ${systems.length} virtual machines; a box holds exactly one`)
  }
  return systems[0]
}

function osSection(system: XmlNode): string | undefined {
  const section = child(system, 'OperatingSystemSection')
  return text(child(section, 'OSType')) ?? text(child(section, 'Description'))
}

function itemsOfType(items: XmlNode[], type: number): XmlNode[] {
  return items.filter((item) => Number(text(child(item, 'ResourceType'))) === type)
}

function cpuCount(items: XmlNode[], machine: XmlNode | undefined, what: string): number {
  const quantity = text(child(itemsOfType(items, RT.cpu)[0], 'VirtualQuantity'))
    ?? attr(findDeep(child(machine, 'Hardware'), 'CPU'), 'count') ?? '1'
  if (!/^\d+$/.test(quantity) || Number(quantity) < 1) {
    throw badInput('OVF_BAD_HARDWARE', `${what} gives the number of CPUs as "${quantity}", which is not a positive whole number.`)
  }
  return Number(quantity)
}

function memoryMiB(items: XmlNode[], machine: XmlNode | undefined, what: string): number {
  const item = itemsOfType(items, RT.memory)[0]
  const quantity = text(child(item, 'VirtualQuantity'))
  const bytes = quantity === undefined
    ? quantityInBytes(attr(findDeep(child(machine, 'Hardware'), 'Memory'), 'RAMSize'), 'MegaBytes', 'the memory size', 'OVF_BAD_HARDWARE')
    : quantityInBytes(quantity, text(child(item, 'AllocationUnits')) ?? 'MegaBytes', 'the memory size', 'OVF_BAD_HARDWARE')
  return Math.round(bytes / 2 ** 20)
}

/** VirtualBox nests Firmware differently across settings versions, so search the whole Machine. */
function firmware(machine: XmlNode | undefined, hardware: XmlNode | undefined): 'bios' | 'efi' {
  const vbox = attr(findDeep(machine, 'Firmware'), 'type')
  if (vbox !== undefined) return /^efi/i.test(vbox) ? 'efi' : 'bios'
  const config = children(hardware, 'Config').find((c) => attr(c, 'key') === 'firmware')
  return /^efi/i.test(attr(config, 'value') ?? '') ? 'efi' : 'bios'
}

function disks(envelope: XmlNode, items: XmlNode[], what: string): OvfDisk[] {
  const diskSection = children(child(envelope, 'DiskSection'), 'Disk')
  const files = children(child(envelope, 'References'), 'File')
  const result: OvfDisk[] = []
  for (const item of itemsOfType(items, RT.disk)) {
    const host = text(child(item, 'HostResource'))
    if (host === undefined) continue // an empty drive slot
    const diskId = /^(?:ovf:)?\/disk\/(.+)$/.exec(host)?.[1]
    if (!diskId) throw broken(what, `a disk's HostResource is "${host}", not a reference to a disk ("ovf:/disk/<id>")`)
    const disk = diskSection.find((d) => attr(d, 'diskId') === diskId)
    if (!disk) throw broken(what, `the hardware refers to disk "${diskId}", which its DiskSection does not list`)
    const fileRef = attr(disk, 'fileRef')
    const file = files.find((f) => attr(f, 'id') === fileRef)
    if (!file) throw broken(what, `disk "${diskId}" refers to file "${fileRef ?? ''}", which its References do not list`)
    const address = text(child(item, 'AddressOnParent'))
    result.push({
      diskId,
      file: checkHref(attr(file, 'href'), what),
      capacityBytes: quantityInBytes(attr(disk, 'capacity'), attr(disk, 'capacityAllocationUnits'), `the capacity of disk "${diskId}"`, 'OVF_BAD_CAPACITY'),
      format: attr(disk, 'format'),
      controller: controllerOf(item, items),
      addressOnParent: address !== undefined && /^\d+$/.test(address) ? Number(address) : undefined,
    })
  }
  return result
}

function controllerOf(diskItem: XmlNode, items: XmlNode[]): OvfController | undefined {
  const parentId = text(child(diskItem, 'Parent'))
  const parent = items.find((item) => text(child(item, 'InstanceID')) === parentId)
  if (parentId === undefined || !parent) return undefined
  const resourceType = Number(text(child(parent, 'ResourceType')))
  const subType = text(child(parent, 'ResourceSubType'))
  return {kind: controllerKind(resourceType, subType), resourceType, subType}
}

function controllerKind(resourceType: number, subType = ''): OvfController['kind'] {
  if (resourceType === RT.ide) return 'ide'
  if (resourceType === RT.scsi) return /virtio/i.test(subType) ? 'virtio-scsi' : 'scsi'
  if (resourceType === RT.otherStorage) return /nvme/i.test(subType) ? 'nvme' : 'sata'
  return 'other'
}

/** The disk must be a file inside the box, next to or below the OVF. */
function checkHref(href: string | undefined, what: string): string {
  if (!href || href.startsWith('/') || href.includes('\\') || /^[a-z][a-z0-9+.-]*:/i.test(href) || href.split('/').includes('..')) {
    throw badInput('OVF_BAD_HREF', `${what} names a disk file "${href ?? ''}" that is not a file inside the box.`, [
      'Export the VM again from VirtualBox or "vagrant package"; their disks are plain file names such as box-disk001.vmdk.',
    ])
  }
  return href
}

function broken(what: string, why: string): Error {
  return badInput('OVF_BROKEN', `${what} cannot be used: ${why}.`, ['Export the VM again from VirtualBox or "vagrant package".'])
}
