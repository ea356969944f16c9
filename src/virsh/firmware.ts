import {readdir, readFile, stat} from 'node:fs/promises'
import {join} from 'node:path'

import {ShienError} from '../errors.js'

/**
 * Where qemu's firmware packages describe their firmware (QEMU's docs/interop/firmware.json):
 * Debian's ovmf and qemu-efi-aarch64 put theirs in /usr/share/qemu/firmware; an admin's go in
 * /etc/qemu/firmware.
 */
export const FIRMWARE_DESCRIPTOR_DIRS = ['/etc/qemu/firmware', '/usr/share/qemu/firmware']

interface FlashDescriptor {
  mapping?: {device?: unknown; executable?: {filename?: unknown}; 'nvram-template'?: {filename?: unknown}}
}

/** The UEFI code a rendered domain loads (`<loader>`), or undefined for a BIOS domain. */
export function loaderOf(xml: string): string | undefined {
  return /<loader\b[^>]*>\s*([^<\s]+)\s*<\/loader>/.exec(xml)?.[1]
}

/** The variable store a domain's UEFI writes (`<nvram>`, as a path or a file source), if any. */
export function nvramOf(xml: string): string | undefined {
  const element = /<nvram\b[^>]*?(?:\/>|>([\s\S]*?)<\/nvram>)/.exec(xml)?.[1]
  if (element === undefined) return undefined
  return /<source\b[^>]*\bfile=(?:'([^']*)'|"([^"]*)")/.exec(element)?.slice(1).find((p) => p !== undefined) ?? (element.trim() || undefined)
}

/**
 * The variable store template that belongs to the UEFI code `loader`, from the firmware
 * descriptors: each VM's store starts as a copy of it. Only root-owned files that nobody else
 * can write are read, descriptor and template alike: the copy is what the guest's firmware trusts.
 */
export async function varsTemplateFor(loader: string, dirs: string[] = FIRMWARE_DESCRIPTOR_DIRS): Promise<string> {
  for (const dir of dirs) {
    const names = await readdir(dir).catch(() => [] as string[])
    for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
      const path = join(dir, name)
      if (!(await rootOnly(path))) continue
      const mapping = (parse(await readFile(path, 'utf8')) as FlashDescriptor | undefined)?.mapping
      const template = mapping?.['nvram-template']?.filename
      if (mapping?.device !== 'flash' || mapping.executable?.filename !== loader || typeof template !== 'string') continue
      if (await rootOnly(template)) return template
    }
  }
  throw new ShienError(`No firmware descriptor in ${dirs.join(' or ')} names a variable store for ${loader}.`, {
    code: 'FIRMWARE_MISSING',
    exit: 'remote',
    suggestions: ['Ask an admin to install the firmware package (ovmf for x86_64, qemu-efi-aarch64 for aarch64).'],
  })
}

async function rootOnly(path: string): Promise<boolean> {
  const info = await stat(path).catch(() => undefined)
  return info !== undefined && info.isFile() && info.uid === 0 && (info.mode & 0o022) === 0
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
