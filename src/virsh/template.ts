import {readFile, stat} from 'node:fs/promises'
import {join} from 'node:path'

import {XMLParser, XMLValidator} from 'fast-xml-parser'

import {ShienError} from '../errors.js'
import {TEMPLATE_NAME} from '../names.js'
import type {RunAs} from '../process/run.js'
import type {GuestArch} from '../config/blade-arch.js'
import {withOwnerLabel} from './owner-label.js'

/** Everything ie-virsh fills into a domain template; all of it computed, none of it typed in. */
export interface DomainValues {
  name: string
  uuid: string
  domainType: 'kvm' | 'qemu'
  memoryMiB: number
  vcpus: number
  diskPath: string
  /** Real paths of the disk's backing files, nearest first. */
  backingChain: string[]
  /** The host port forwarded to the guest's sshd; only for templates that use {{sshPort}}. */
  sshPort?: number
  listenAddress: string
  /** Whose VM it is: its qemu runs as this uid and gid (owner-label.ts). */
  owner: RunAs
  /** The guest's architecture, for `{{{cpu}}}`. */
  arch: GuestArch
  /** The VM's own UEFI variable store, in the owner's images folder; for templates that use {{nvramPath}}. */
  nvramPath?: string
}

/**
 * The template file for an image's platform: `NAME.xml` for x86_64 BIOS, `NAME.uefi.xml` for
 * x86_64 UEFI, `NAME.aarch64.xml` for aarch64 (which boots UEFI only).
 */
export function templateVariant(platform: {arch: GuestArch; firmware: 'bios' | 'efi'}): string | undefined {
  if (platform.arch === 'aarch64') return 'aarch64'
  return platform.firmware === 'efi' ? 'uefi' : undefined
}

export interface DomainTemplate {
  path: string
  text: string
}


/**
 * Finds a template by name: the admin's folder first, then the package's `templates/`.
 * ie-virsh runs as root and the template decides what qemu runs, so a template must be owned
 * by root and writable by nobody else.
 */
export async function loadTemplate(name: string, dirs: TemplateDirs, variant?: string): Promise<DomainTemplate> {
  const found = await findTemplate(name, dirs, variant)
  const file = variant === undefined ? name : `${name}.${variant}`
  if (found === undefined) throw templateError(`No template "${file}" in ${dirs.admin} or ${dirs.package}.`)
  return found
}

export interface TemplateDirs {
  admin: string
  package: string
}

/** Like loadTemplate, but undefined when neither folder has the template. */
export async function findTemplate(name: string, dirs: TemplateDirs, variant?: string): Promise<DomainTemplate | undefined> {
  if (!TEMPLATE_NAME.test(name)) throw templateError(`"${name}" is not a valid template name.`)
  const file = variant === undefined ? `${name}.xml` : `${name}.${variant}.xml`
  for (const dir of [dirs.admin, dirs.package]) {
    const path = join(dir, file)
    const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined
      throw templateError(`Cannot read the template ${path}: ${error.message}.`)
    })
    if (info === undefined) continue
    if (!info.isFile() || info.uid !== 0 || (info.mode & 0o022) !== 0) {
      throw templateError(`The template ${path} must be a file owned by root and writable only by root.`)
    }
    return {path, text: await readFile(path, 'utf8')}
  }
  return undefined
}

/** The first line of the template's leading comment, which says what the template is for. */
export function templateSummary(template: DomainTemplate): string {
  const comment = /^\s*<!--([\s\S]*?)-->/.exec(template.text)?.[1] ?? ''
  return comment.split('\n').map((l) => l.trim()).find((l) => l.length > 0) ?? ''
}

export function usesSshPort(template: DomainTemplate): boolean {
  return template.text.includes('{{sshPort}}')
}

export function usesNvram(template: DomainTemplate): boolean {
  return template.text.includes('{{nvramPath}}')
}

/**
 * The guest CPU for `{{{cpu}}}`. Under KVM the host's own (host-passthrough). Under TCG an aarch64
 * guest gets a Cortex-A57 (Armv8.0): qemu's `max` adds pointer authentication, whose QARMA
 * emulation makes TCG much slower; an x86_64 guest keeps libvirt's default model.
 */
export function cpuXml(arch: GuestArch, domainType: 'kvm' | 'qemu'): string {
  if (domainType === 'kvm') return `<cpu mode='host-passthrough' check='none'/>`
  if (arch === 'aarch64') return `<cpu mode='custom' match='exact' check='none'><model fallback='forbid'>cortex-a57</model></cpu>`
  return ''
}

/**
 * Fills a template. `{{key}}` takes a value, XML-escaped; `{{{backingStore}}}` takes the one
 * fragment ie-virsh builds itself (from escaped values too). An unknown placeholder is an
 * error rather than left in place, so a typo in an admin's template cannot reach libvirt.
 */
export function renderDomainXml(template: DomainTemplate, v: DomainValues): string {
  if (/<!DOCTYPE|<!ENTITY/i.test(template.text)) throw templateError(`${template.path} declares a DOCTYPE or entities.`)
  // Without it libvirt would read the backing chain from the image header, which the student
  // can rewrite after define.
  if (!template.text.includes('{{{backingStore}}}')) throw templateError(`${template.path} lacks {{{backingStore}}} in its disk.`)
  const values: Record<string, string | number | undefined> = {
    name: v.name,
    uuid: v.uuid,
    domainType: v.domainType,
    memoryMiB: v.memoryMiB,
    vcpus: v.vcpus,
    diskPath: v.diskPath,
    sshPort: v.sshPort,
    listenAddress: v.listenAddress,
    nvramPath: v.nvramPath,
  }
  const xml = template.text.replace(/\{\{\{(\w+)\}\}\}|\{\{(\w+)\}\}/g, (whole, fragment?: string, key?: string) => {
    if (fragment === 'backingStore') return backingStoreXml(v.backingChain)
    if (fragment === 'cpu') return cpuXml(v.arch, v.domainType)
    const value = key === undefined ? undefined : values[key]
    if (value === undefined) throw templateError(`${template.path} uses an unknown placeholder ${whole}.`)
    return escapeXml(String(value))
  })
  checkRendered(template.path, xml, v.name)
  // The architecture decides what the blade allows (native, emulated) and what qemu runs.
  const arch = /<type\b[^>]*\barch=['"]([^'"]+)['"]/.exec(xml)?.[1]
  if (arch !== undefined && arch !== v.arch) throw templateError(`${template.path} defines an ${arch} machine, but the image is ${v.arch}.`)
  return withOwnerLabel(xml, v.owner)
}

/** Escapes a value for XML text and for attributes in either kind of quotes. */
export function escapeXml(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;')
}

/**
 * The disk's backing chain, spelled out. Given in the XML, libvirt hands qemu exactly these
 * files (with -blockdev) instead of following the names in the image headers, which the
 * student can rewrite after define. An empty `<backingStore/>` means "no backing file".
 * relabel='no' keeps libvirt from chowning files that belong to the student or to a box.
 */
export function backingStoreXml(chain: string[]): string {
  let xml = '<backingStore/>'
  for (const path of [...chain].reverse()) {
    xml =
      `<backingStore type='file'><format type='qcow2'/>` +
      `<source file='${escapeXml(path)}'><seclabel model='dac' relabel='no'/></source>${xml}</backingStore>`
  }
  return xml
}

function checkRendered(path: string, xml: string, name: string): void {
  const valid = XMLValidator.validate(xml)
  if (valid !== true) throw templateError(`${path} does not render to valid XML: ${valid.err.msg} (line ${valid.err.line}).`)
  const doc = new XMLParser({parseTagValue: false}).parse(xml) as {domain?: {name?: unknown; seclabel?: unknown}}
  if (String(doc.domain?.name ?? '') !== name) {
    throw templateError(`${path} must set the domain name to {{name}}.`)
  }
  // ie-virsh sets the domain's label itself: the VM runs as its owner, whatever the template.
  if (doc.domain?.seclabel !== undefined) {
    throw templateError(`${path} sets a domain <seclabel>; remove it (ie-virsh runs each VM as its owner).`)
  }
}

function templateError(message: string): ShienError {
  return new ShienError(message, {
    code: 'TEMPLATE_INVALID',
    suggestions: ['Ask an admin to fix the domain template (see templates/README.md).'],
  })
}
