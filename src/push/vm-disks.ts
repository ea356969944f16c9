import {closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync} from 'node:fs'
import {homedir} from 'node:os'
import {basename, dirname, isAbsolute, join, resolve} from 'node:path'

import {children, child, parseUntrustedXml, type XmlNode} from '../box/xml-tree.js'

/**
 * The disk files of the project's Vagrant VM, found before `vagrant package` runs, from the
 * files the provider keeps (no provider tool is run): their bytes are what the box will hold at
 * most and what its image on the blade needs at least, so a blade without that much room is
 * found out before the VM is shut down. `known: false` says why they could not be found; the
 * blade then checks its room once the box is packaged.
 */
export type VmDisks =
  | {known: true; provider: string; machine: string; files: string[]; bytes: number}
  | {known: false; reason: string}

export interface VmDisksEnv {
  home?: string
  /** VBOX_USER_HOME, VAGRANT_DOTFILE_PATH as the student set them. */
  env?: NodeJS.ProcessEnv
  platform?: NodeJS.Platform
}

/** The one machine of the project that Vagrant created, and its disks. */
export function vagrantVmDisks(projectDir: string, opts: VmDisksEnv = {}): VmDisks {
  const env = opts.env ?? process.env
  const dotfile = resolve(projectDir, env.VAGRANT_DOTFILE_PATH || '.vagrant')
  const machinesDir = join(dotfile, 'machines')
  const created = listDir(machinesDir).flatMap((machine) =>
    listDir(join(machinesDir, machine))
      .filter((provider) => existsSync(join(machinesDir, machine, provider, 'id')))
      .map((provider) => ({machine, provider, id: readFileSync(join(machinesDir, machine, provider, 'id'), 'utf8').trim()})),
  )
  if (created.length === 0) return {known: false, reason: 'Vagrant has created no VM in this project yet'}
  if (created.length > 1) return {known: false, reason: `the project has ${created.length} VMs (${created.map((c) => c.machine).join(', ')})`}
  const [{machine, provider, id}] = created
  const read = provider === 'virtualbox' ? virtualBoxDisks : provider === 'vmware_desktop' ? vmwareDisks : undefined
  if (!read) return {known: false, reason: `shien does not read the disks of a ${provider} VM before it is packaged`}
  try {
    const files = read(id, opts)
    if (typeof files === 'string') return {known: false, reason: files}
    const bytes = files.reduce((sum, file) => sum + statSync(file).size, 0)
    return {known: true, provider, machine, files, bytes}
  } catch (error) {
    // The estimate only lets a push fail sooner; a settings file it cannot read never stops one.
    return {known: false, reason: `the ${provider} VM's files could not be read (${(error as Error).message})`}
  }
}

/**
 * VirtualBox: VirtualBox.xml's machine registry gives the VM's `.vbox` file, whose media
 * registry lists its hard disks (with their differencing children, for snapshots), relative
 * to the `.vbox` file's folder.
 */
function virtualBoxDisks(id: string, opts: VmDisksEnv): string[] | string {
  const settings = virtualBoxSettingsFile(opts)
  if (!settings) return 'VirtualBox.xml was not found (set VBOX_USER_HOME if VirtualBox keeps it elsewhere)'
  const registry = child(child(child(parseUntrustedXml(readFileSync(settings, 'utf8'), basename(settings)), 'VirtualBox'), 'Global'), 'MachineRegistry')
  const entry = children(registry, 'MachineEntry').find((e) => String(e['@uuid'] ?? '').replace(/[{}]/g, '').toLowerCase() === id.toLowerCase())
  if (!entry) return `VirtualBox has no VM ${id} registered in ${settings}`
  const src = String(entry['@src'] ?? '')
  const vbox = isAbsolute(src) ? src : join(dirname(settings), src)
  if (!existsSync(vbox)) return `${vbox}, the VM's settings file, is missing`
  const machine = child(child(parseUntrustedXml(readFileSync(vbox, 'utf8'), basename(vbox)), 'VirtualBox'), 'Machine')
  const disks: string[] = []
  const walk = (node: XmlNode) => {
    for (const disk of children(node, 'HardDisk')) {
      const location = String(disk['@location'] ?? '')
      if (location !== '') disks.push(isAbsolute(location) ? location : join(dirname(vbox), location))
      walk(disk)
    }
  }
  walk(child(child(machine, 'MediaRegistry'), 'HardDisks') ?? {})
  const present = disks.filter((d) => existsSync(d))
  return present.length > 0 ? present : `${vbox} lists no disk file that exists`
}

/** Where VirtualBox keeps VirtualBox.xml: VBOX_USER_HOME, else the platform's place, else the legacy ~/.VirtualBox. */
function virtualBoxSettingsFile(opts: VmDisksEnv): string | undefined {
  const env = opts.env ?? process.env
  const home = opts.home ?? homedir()
  const platform = opts.platform ?? process.platform
  const candidates = env.VBOX_USER_HOME
    ? [join(env.VBOX_USER_HOME, 'VirtualBox.xml')]
    : [
        platform === 'darwin' ? join(home, 'Library', 'VirtualBox', 'VirtualBox.xml') : join(env.XDG_CONFIG_HOME || join(home, '.config'), 'VirtualBox', 'VirtualBox.xml'),
        join(home, '.VirtualBox', 'VirtualBox.xml'),
      ]
  return candidates.find((c) => existsSync(c))
}

/**
 * VMware (vmware_desktop): Vagrant's id is the `.vmx` file; each `<bus>N:M.fileName` that names
 * a `.vmdk` is a disk, a descriptor whose split extents (`-s001.vmdk` ...) sit beside it.
 */
function vmwareDisks(vmx: string): string[] | string {
  if (!existsSync(vmx)) return `${vmx}, the VM's .vmx file, is missing`
  const folder = dirname(vmx)
  const disks = [...readFileSync(vmx, 'utf8').matchAll(/^\s*(?:scsi|sata|nvme|ide)\d+:\d+\.fileName\s*=\s*"([^"]+\.vmdk)"/gim)].map((m) => m[1])
  const files: string[] = []
  for (const disk of disks) {
    // A snapshot's disk is a delta on its parent (parentFileNameHint): the chain is the disk.
    let path: string | undefined = isAbsolute(disk) ? disk : join(folder, disk)
    while (path && existsSync(path) && !files.includes(path) && files.length < 64) {
      files.push(path)
      const stem = basename(path, '.vmdk')
      const extents = listDir(dirname(path)).filter((f) => new RegExp(`^${escapeRegExp(stem)}-s\\d{3}\\.vmdk$`).test(f))
      files.push(...extents.map((f) => join(dirname(path!), f)))
      const parent: string | undefined = descriptorHead(path).match(/parentFileNameHint\s*=\s*"([^"]+)"/)?.[1]
      path = parent === undefined ? undefined : isAbsolute(parent) ? parent : join(dirname(path), parent)
    }
  }
  return files.length > 0 ? files : `${vmx} names no disk file that exists`
}

/** The first 64 KiB of a VMDK: all of a text descriptor, or a sparse file's header and embedded descriptor. */
function descriptorHead(path: string): string {
  const fd = openSync(path, 'r')
  try {
    const buffer = Buffer.alloc(64 * 1024)
    return buffer.subarray(0, readSync(fd, buffer, 0, buffer.length, 0)).toString('latin1')
  } finally {
    closeSync(fd)
  }
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir).sort()
  } catch {
    return []
  }
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
