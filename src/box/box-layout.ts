import {posix} from 'node:path'

import {badInput} from '../errors.js'
import {agreedArchitecture, architectureNamed, type Architecture, type ArchitectureClaim} from './architecture.js'
import {parseOvf, type OvfInfo} from './ovf.js'
import {parallelsFirmware, parallelsName} from './parallels.js'
import {parallelsDisk, qcow2Disk, virtualboxDisk, vmwareDisk, type BoxDisk, type BoxFiles} from './provider-disks.js'
import {parseVmx} from './vmx.js'

/** The Vagrant providers whose boxes shien takes, as `vagrant package` writes them. */
export type Provider = 'virtualbox' | 'vmware_desktop' | 'parallels' | 'libvirt' | 'qemu'

/** The machine as its configuration describes it; a libvirt box has none beyond its disk. */
export interface MachineInfo {
  name?: string
  /** VirtualBox OS type, VMware guestOS. */
  osType?: string
  cpus?: number
  memoryMiB?: number
}

/** What a box is, judged from its files: which provider, which machine, which disks. */
export interface BoxLayout {
  /** The provider the box's files are for. */
  provider: Provider
  /** `metadata.json` as written, when the box has one. */
  metadata: Record<string, unknown> | undefined
  /** The architecture the box declares (metadata.json, OVF, VMX), when any part declares one. */
  architecture: Architecture | undefined
  /** Each declaration of the architecture and where it was read. */
  architectureClaims: ArchitectureClaim[]
  /** BIOS or EFI; undefined when nothing in the box says (a libvirt box of an x86 machine). */
  firmware: 'bios' | 'efi' | undefined
  machine: MachineInfo
  /** The machine's configuration file: `box.ovf`, the `.vmx`, the bundle's `config.pvs`. */
  configEntry: string | undefined
  /** The parsed OVF, for a VirtualBox box. */
  ovf: OvfInfo | undefined
  /** Boot disk first. */
  disks: BoxDisk[]
  warnings: string[]
}

/** Providers that read the same files: libvirt's and qemu's boxes are both a qcow2 `box.img`. */
const FAMILY: Record<Provider, string> = {virtualbox: 'virtualbox', vmware_desktop: 'vmware', parallels: 'parallels', libvirt: 'qcow2', qemu: 'qcow2'}
const LABEL: Record<Provider, string> = {virtualbox: 'VirtualBox', vmware_desktop: 'VMware', parallels: 'Parallels', libvirt: 'libvirt', qemu: 'qemu'}
const METADATA_PROVIDERS: Record<string, Provider> = {
  virtualbox: 'virtualbox', vmware_desktop: 'vmware_desktop', vmware_fusion: 'vmware_desktop', vmware_workstation: 'vmware_desktop',
  parallels: 'parallels', libvirt: 'libvirt', qemu: 'qemu',
}
/** The machine configurations a layout reads whole; of every other file the gates need only the head. */
const CONFIG_TEXT = /(\.ovf|\.vmx|\/config\.pvs|\.hdd\/DiskDescriptor\.xml)$/i
const REPACKAGE = ['Package the box again with "vagrant package" and inspect that file.']
const ACCEPTED = 'a VirtualBox box (box.ovf), a VMware box (.vmx), a Parallels box (.pvm folder) or a libvirt/qemu box (box.img)'

/** Whether an entry is a machine configuration read whole (macOS's `._` AppleDouble files are not). */
export function isConfigText(name: string): boolean {
  return CONFIG_TEXT.test(name) && !posix.basename(name).startsWith('._')
}

/** Judges a box from its files: the provider's layout, every disk through its gate, and one architecture. */
export function judgeBox(files: BoxFiles, metadata: Record<string, unknown> | undefined): BoxLayout {
  const declared = declaredProvider(metadata)
  const layout = readLayout(files, declared, metadata)
  if (declared && FAMILY[declared] !== FAMILY[layout.provider]) {
    const disks = layout.disks.map((d) => d.entry).join(', ')
    const holds = layout.configEntry ? `${layout.configEntry} and ${disks}` : disks
    throw badInput('BOX_PROVIDER_MISMATCH', `metadata.json names the provider "${String(metadata?.provider)}", but the box holds a ${LABEL[layout.provider]} machine (${holds}).`, [
      `Set "provider": "${layout.provider}" in metadata.json, or package the VM again with "vagrant package".`,
    ])
  }
  if (layout.disks.length === 0) throw badInput('BOX_NO_DISK', `${layout.configEntry ?? 'The box'} lists no hard disk, so there is nothing to convert.`, REPACKAGE)
  const {claims: own, ...rest} = layout
  const claims = [...metadataClaims(metadata), ...own]
  const architecture = agreedArchitecture(claims)
  // An Arm machine has no BIOS: it boots UEFI whatever its configuration leaves unsaid.
  const firmware = architecture === 'arm64' ? 'efi' : layout.firmware
  const warnings = metadata ? layout.warnings : [vagrantUpgradeNote(layout.provider), ...layout.warnings]
  return {...rest, metadata, architecture, architectureClaims: claims, firmware, warnings}
}

type ProviderLayout = Omit<BoxLayout, 'metadata' | 'architecture' | 'architectureClaims'> & {claims: ArchitectureClaim[]}

function readLayout(files: BoxFiles, declared: Provider | undefined, metadata: Record<string, unknown> | undefined): ProviderLayout {
  // macOS tar adds "._name" AppleDouble files (extended attributes) beside files it packs.
  const names = files.entries.filter((e) => e.type === 'file' && !posix.basename(e.name).startsWith('._')).map((e) => e.name)
  const ovfs = [...files.texts.keys()].filter((name) => /\.ovf$/i.test(name) && !posix.basename(name).startsWith('._'))
  if (ovfs.length > 0) return virtualboxLayout(files, chooseOvf(ovfs))
  const vmx = names.filter((name) => /^[^/]+\.vmx$/i.test(name))
  if (vmx.length > 1) throw badInput('BOX_AMBIGUOUS_CONFIG', `The box has several VMware machines (${vmx.join(', ')}); a box holds one.`, REPACKAGE)
  if (vmx.length === 1) return vmwareLayout(files, vmx[0])
  const bundles = [...new Set(names.filter((name) => /^[^/]+\.pvm\//i.test(name)).map((name) => name.split('/')[0]))]
  if (bundles.length > 1) throw badInput('BOX_AMBIGUOUS_CONFIG', `The box has several Parallels machines (${bundles.join(', ')}); a box holds one.`, REPACKAGE)
  if (bundles.length === 1) return parallelsLayout(files, bundles[0], names)
  if (names.includes('box.img')) return qcow2Layout(files, declared === 'qemu' ? 'qemu' : 'libvirt', metadata)
  if (declared === 'virtualbox' || (declared === undefined && names.some((name) => /\.vmdk$/i.test(name)))) {
    throw badInput('BOX_NO_OVF', 'The box has no OVF descriptor (box.ovf), so it is not a whole VirtualBox box.', ['Make the box with "vagrant package" in your VirtualBox project.'])
  }
  throw badInput('BOX_UNKNOWN_FORMAT', `The box is none of the kinds shien takes: ${ACCEPTED}.`, ['Make the box with "vagrant package" in your Vagrant project (VirtualBox, VMware, Parallels or libvirt).'])
}

function chooseOvf(names: string[]): string {
  if (names.includes('box.ovf')) return 'box.ovf'
  if (names.length === 1) return names[0]
  throw badInput('BOX_AMBIGUOUS_OVF', `The box has several OVF descriptors (${names.join(', ')}) and none is box.ovf.`, REPACKAGE)
}

function virtualboxLayout(files: BoxFiles, ovfEntry: string): ProviderLayout {
  const ovf = parseOvf(files.texts.get(ovfEntry) ?? '', ovfEntry)
  const disks = ovf.disks.map((disk) => virtualboxDisk(disk, ovfEntry, files))
  const warnings = ovf.disks.flatMap((declared, i) => declared.capacityBytes === disks[i].capacityBytes ? [] : [
    `${disks[i].entry}: the OVF says ${declared.capacityBytes} bytes but the VMDK holds ${disks[i].capacityBytes}; the VMDK's size is used.`,
  ])
  const claims: ArchitectureClaim[] = []
  const platform = ovf.platform === undefined ? undefined : ovf.platform === 'ARM' ? 'arm64' : ovf.platform === 'x86' && /_64$/.test(ovf.osType ?? '') ? 'amd64' : undefined
  if (platform) claims.push({architecture: platform, source: `${ovfEntry} (<Platform architecture="${ovf.platform}">)`})
  const osType = /_arm64$/i.test(ovf.osType ?? '') ? 'arm64' : /_64$/.test(ovf.osType ?? '') ? 'amd64' : undefined
  if (osType) claims.push({architecture: osType, source: `${ovfEntry} (OS type ${ovf.osType})`})
  return {
    provider: 'virtualbox', firmware: ovf.firmware, configEntry: ovfEntry, ovf, disks, warnings, claims,
    machine: {name: ovf.name, osType: ovf.osType, cpus: ovf.cpus, memoryMiB: ovf.memoryMiB},
  }
}

function vmwareLayout(files: BoxFiles, vmxEntry: string): ProviderLayout {
  const vmx = parseVmx(files.texts.get(vmxEntry) ?? '', vmxEntry)
  const used = new Set<string>()
  const disks = vmx.disks.map((d) => vmwareDisk(d.device, d.file, vmxEntry, files, used))
  const claims = vmx.architecture ? [{architecture: vmx.architecture, source: `${vmxEntry} (guestOS "${vmx.guestOS}")`}] : []
  return {
    provider: 'vmware_desktop', firmware: vmx.firmware, configEntry: vmxEntry, ovf: undefined, disks, warnings: [], claims,
    machine: {name: vmx.name, osType: vmx.guestOS, cpus: vmx.cpus, memoryMiB: vmx.memoryMiB},
  }
}

function parallelsLayout(files: BoxFiles, bundle: string, names: string[]): ProviderLayout {
  const configEntry = `${bundle}/config.pvs`
  const config = files.texts.get(configEntry)
  if (config === undefined) throw badInput('BOX_MISSING_CONFIG', `The Parallels machine ${bundle} in the box has no config.pvs.`, REPACKAGE)
  const folders = [...new Set(names.filter((name) => name.startsWith(`${bundle}/`) && /^[^/]+\.hdd\//i.test(name.slice(bundle.length + 1))).map((name) => name.split('/').slice(0, 2).join('/')))].sort()
  const warnings: string[] = []
  const disks = folders.map((folder) => {
    const {disk, declaredBytes} = parallelsDisk(folder, files)
    if (declaredBytes !== disk.capacityBytes) warnings.push(`${folder}: DiskDescriptor.xml says ${declaredBytes} bytes but the image holds ${disk.capacityBytes}; the image's size is used.`)
    return disk
  })
  return {
    provider: 'parallels', firmware: parallelsFirmware(config, configEntry), configEntry, ovf: undefined, disks, warnings, claims: [],
    machine: {name: parallelsName(config, configEntry)},
  }
}

function qcow2Layout(files: BoxFiles, provider: 'libvirt' | 'qemu', metadata: Record<string, unknown> | undefined): ProviderLayout {
  const disk = qcow2Disk('box.img', files)
  const warnings: string[] = []
  if (metadata?.format !== undefined && metadata.format !== 'qcow2') warnings.push(`metadata.json says the format is ${JSON.stringify(metadata.format)}; box.img is qcow2.`)
  return {provider, firmware: undefined, configEntry: undefined, ovf: undefined, disks: [disk], warnings, claims: [], machine: {}}
}

function declaredProvider(metadata: Record<string, unknown> | undefined): Provider | undefined {
  if (metadata?.provider === undefined) return undefined
  const provider = typeof metadata.provider === 'string' ? METADATA_PROVIDERS[metadata.provider] : undefined
  if (!provider) {
    throw badInput('BOX_PROVIDER_UNSUPPORTED', `metadata.json names the provider ${JSON.stringify(metadata.provider)}; shien takes ${ACCEPTED}.`, [
      'Package the VM with one of those providers ("vagrant package").',
    ])
  }
  return provider
}

/** Vagrant 2.4's `architecture` in metadata.json; "unknown" (or none) declares nothing. */
function metadataClaims(metadata: Record<string, unknown> | undefined): ArchitectureClaim[] {
  const value = metadata?.architecture
  if (value === undefined || value === null || value === 'unknown') return []
  const architecture = typeof value === 'string' ? architectureNamed(value) : undefined
  if (!architecture) {
    throw badInput('BOX_BAD_METADATA', `metadata.json gives the architecture ${JSON.stringify(value)}, which is not one Vagrant names (amd64, i386, arm64, arm, ...).`, REPACKAGE)
  }
  return [{architecture, source: `metadata.json ("architecture": ${JSON.stringify(value)})`}]
}

/** A box from before Vagrant 1.1 has no metadata.json; Vagrant's upgrade of it writes {"provider":"virtualbox"}. */
function vagrantUpgradeNote(provider: Provider): string {
  return provider === 'virtualbox'
    ? 'The box has no metadata.json (Vagrant\'s oldest box format): Vagrant adds {"provider":"virtualbox"} when it adds the box, and shien box publish does the same.'
    : 'The box has no metadata.json; Vagrant will not accept it as a box.'
}
