import {isGuestArch, type GuestArch} from '../config/blade-arch.js'
import {badInput, ShienError} from '../errors.js'

/** What an image boots as: its architecture and firmware, as the push recorded them. */
export interface ImagePlatform {
  arch: GuestArch
  firmware: 'bios' | 'efi'
}

/** Images pushed before the record held a platform, and records without one, are x86_64 BIOS. */
export const LEGACY_PLATFORM: ImagePlatform = {arch: 'x86_64', firmware: 'bios'}

/**
 * The platform in a slot's record (`images/<slot>.json`, written by harden: `architecture`,
 * `firmware`). The record is the student's file and may say anything: what it picks is only
 * which admin template renders the domain, and the blade's arch rules apply to that choice.
 * A record that cannot be read (none yet) gives the legacy platform; one that is there but
 * malformed is refused, rather than booting the image as something it may not be.
 */
export function imagePlatform(text: string | undefined, path: string): ImagePlatform {
  if (text === undefined) return LEGACY_PLATFORM
  let record: unknown
  try {
    record = JSON.parse(text)
  } catch {
    throw invalid(path, 'it is not JSON')
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record)) throw invalid(path, 'it is not a JSON object')
  const {architecture, firmware} = record as {architecture?: unknown; firmware?: unknown}
  if (architecture !== undefined && typeof architecture !== 'string') throw invalid(path, `"architecture" is ${JSON.stringify(architecture)}`)
  if (architecture !== undefined && !isGuestArch(architecture)) {
    throw new ShienError(`The image is an ${architecture} system; blades run x86_64 and aarch64 VMs only.`, {
      code: 'BLADE_ARCH_UNSUPPORTED',
      exit: 'refused',
      suggestions: ['Use an amd64 or arm64 box.'],
    })
  }
  if (firmware !== undefined && firmware !== 'bios' && firmware !== 'efi') throw invalid(path, `"firmware" is ${JSON.stringify(firmware)}`)
  const arch = architecture ?? LEGACY_PLATFORM.arch
  // An Arm machine has no BIOS.
  return {arch, firmware: arch === 'aarch64' ? 'efi' : (firmware ?? 'bios')}
}

function invalid(path: string, why: string) {
  return badInput('IMAGE_RECORD_INVALID', `The record of the image, ${path}, cannot be read: ${why}.`, ['Push the image again (shien push --replace): harden writes the record.'])
}
