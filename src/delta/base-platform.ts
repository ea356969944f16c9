import {badInput} from '../errors.js'

/**
 * What a published base boots as: `libvirt.platform.json` beside it (`libvirt-arm64.platform.json`
 * for another architecture's), written by `shien box publish` from the box it converted. A delta
 * push is made only against a base of the box's architecture, and its overlay boots with the
 * base's firmware unless the pushed box declares its own (docs/delta.md).
 */
export interface BasePlatform {
  /** Vagrant's name (`amd64`, `arm64`), or "unknown" when the box was published as such. */
  architecture: string
  firmware: 'bios' | 'efi'
}

/** The largest record read; a real one is about 50 bytes. */
export const BASE_PLATFORM_MAX_BYTES = 4096

/** A box's platform as its base records it: firmware as declared, BIOS unless told, UEFI for any Arm machine. */
export function basePlatformOf(architecture: string, firmware: 'bios' | 'efi' | undefined): BasePlatform {
  return {architecture, firmware: architecture === 'arm64' || architecture === 'arm' ? 'efi' : (firmware ?? 'bios')}
}

export function formatBasePlatform(platform: BasePlatform): string {
  return JSON.stringify({architecture: platform.architecture, firmware: platform.firmware}) + '\n'
}

/** Parses a platform record; anything else than the two fields as publish writes them is refused. */
export function parseBasePlatform(text: string, source: string): BasePlatform {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    value = undefined
  }
  const record = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {}
  const {architecture, firmware} = record
  if (typeof architecture !== 'string' || !/^[a-z0-9]+$/.test(architecture) || (firmware !== 'bios' && firmware !== 'efi')) {
    throw badInput('BASE_PLATFORM_INVALID', `${source} is not a base's platform record such as {"architecture": "amd64", "firmware": "bios"}.`, [
      'Publish the version again with shien box publish --force, or ask an admin.',
    ])
  }
  return {architecture, firmware}
}
