import {badInput} from '../errors.js'

/** Bytes per unit for the unit names OVF writers use instead of DMTF programmatic units. */
const NAMED_UNITS: Record<string, number> = {
  byte: 1, bytes: 1,
  kilobytes: 2 ** 10, kb: 2 ** 10, kib: 2 ** 10,
  megabytes: 2 ** 20, mb: 2 ** 20, mib: 2 ** 20,
  gigabytes: 2 ** 30, gb: 2 ** 30, gib: 2 ** 30,
  terabytes: 2 ** 40, tb: 2 ** 40, tib: 2 ** 40,
}

/**
 * Bytes in one unit of an OVF allocation unit string: DMTF programmatic units such as
 * `byte * 2^30` or `byte*1024`, or the names VirtualBox and VMware write (`MegaBytes`, `MB`).
 * `where` names the attribute for the error message.
 */
export function bytesPerUnit(units: string, where: string): number {
  const compact = units.replace(/\s+/g, '').toLowerCase()
  const named = NAMED_UNITS[compact]
  if (named !== undefined) return named
  const [base, ...factors] = compact.split('*')
  let result = base === 'byte' || base === 'bytes' ? 1 : Number.NaN
  for (const factor of factors) {
    const match = /^(\d+)(?:\^(\d+))?$/.exec(factor)
    result *= match ? Number(match[1]) ** Number(match[2] ?? 1) : Number.NaN
  }
  if (!Number.isSafeInteger(result) || result < 1) {
    throw badInput('OVF_BAD_UNITS', `The OVF gives ${where} in units "${units}", which shien does not understand.`, [
      'Export the VM again from VirtualBox; it writes units such as "byte * 2^30" or "MegaBytes".',
    ])
  }
  return result
}

/**
 * A whole number of bytes from an OVF quantity and its units; refuses anything that is not
 * a plain non-negative integer with `code`, naming the value.
 */
export function quantityInBytes(value: string | undefined, units: string | undefined, where: string, code: string): number {
  const text = value?.trim() ?? ''
  if (!/^\d+$/.test(text)) {
    throw badInput(code, `The OVF gives ${where} as "${value ?? ''}", which is not a whole number.`, [
      'This OVF looks unfinished (a template with placeholders?). Export the VM again from VirtualBox or "vagrant package".',
    ])
  }
  const bytes = Number(text) * bytesPerUnit(units ?? 'byte', where)
  if (!Number.isSafeInteger(bytes)) {
    throw badInput(code, `The OVF gives ${where} as "${text}" (${units ?? 'byte'}), which is implausibly large.`)
  }
  return bytes
}
