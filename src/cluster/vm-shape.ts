import {ShienError} from '../errors.js'
import type {GuestArch} from '../config/blade-arch.js'

/** What placement needs of a defined VM, read off its domain XML. */
export interface VmShape {
  arch: GuestArch
  memoryMiB: number
}

const UNIT: Record<string, number> = {
  b: 1, bytes: 1, kb: 1000, k: 1024, kib: 1024, mb: 1000 ** 2, m: 1024 ** 2, mib: 1024 ** 2, gb: 1000 ** 3, g: 1024 ** 3, gib: 1024 ** 3,
}

/** Bytes of a domain's `<memory>`, in whichever unit the XML gives it (libvirt's default is KiB). */
export function memoryOf(xml: string): number {
  const m = /<memory(?:\s+unit=['"]([A-Za-z]+)['"])?\s*>\s*(\d+)\s*<\/memory>/.exec(xml)
  if (m === null) return 0
  const unit = UNIT[(m[1] ?? 'KiB').toLowerCase()]
  if (unit === undefined) throw new ShienError(`The domain XML gives memory in an unknown unit "${m[1]}".`, {code: 'TEMPLATE_INVALID'})
  return Number(m[2]) * unit
}

/** A domain's architecture (`<type arch=...>`, x86_64 when absent) and memory in MiB, rounded up. */
export function vmShape(xml: string): VmShape {
  const arch = /<type\b[^>]*\barch=['"]([^'"]+)['"]/.exec(xml)?.[1]
  return {arch: arch === 'aarch64' ? 'aarch64' : 'x86_64', memoryMiB: Math.ceil(memoryOf(xml) / 1024 ** 2)}
}
