import {guestArchOf, type ArchSettings, type GuestArch} from '../config/blade-arch.js'
import {ShienError} from '../errors.js'

/**
 * How much slower a VM runs emulated (TCG) than natively (KVM), as the push tells the student.
 * An estimate, not a measurement of this project's: its test machines have no usable KVM to
 * compare with. QEMU's TCG translates every guest instruction and emulates the MMU in software,
 * and the range usually reported for CPU-bound work against KVM is 5 to 10 times (and more for
 * floating-point and vector code, which TCG runs through helper functions); what was measured
 * here is that a Debian guest boots to sshd in about 30 s under TCG (DESIGN's figures, x86_64)
 * where KVM takes a few seconds.
 */
export const EMULATED_SLOWDOWN = 'roughly 5 to 10 times slower than natively for CPU-bound work, and slower to boot (a minute or more)'

/** How the blade will run the box's VM: natively, emulated (with the note to show), or not known before harden reads its disk. */
export type ArchVerdict = {arch: GuestArch; mode: 'native'} | {arch: GuestArch; mode: 'emulated'; note: string} | {arch: undefined; mode: 'unknown'}

/**
 * Checks the box's declared architecture against what the blade says it runs (`shien blade
 * hello`), before anything is uploaded: an architecture the blade cannot run is refused
 * (BLADE_ARCH_UNSUPPORTED), an emulated one is said with how much slower it will be. ie-virsh
 * checks again as root at define; a box that declares nothing is checked there, once harden read
 * the architecture off its disk. A blade too old to say (no `arch`) is not second-guessed.
 */
export function checkBladeArch(declared: string | undefined, blade: ArchSettings | undefined, host: string): ArchVerdict {
  if (declared === undefined || blade === undefined) return {arch: undefined, mode: 'unknown'}
  const arch = guestArchOf(declared)
  const runs = [...blade.native, ...blade.emulated]
  if (arch === undefined || !runs.includes(arch)) {
    throw new ShienError(`The box is ${declared}${arch && arch !== declared ? ` (${arch})` : ''}, and ${host} runs ${runs.length > 0 ? runs.join(' and ') : 'no'} VMs. Nothing was uploaded.`, {
      code: 'BLADE_ARCH_UNSUPPORTED',
      exit: 'refused',
      suggestions: [
        arch ? `Push to a blade that runs ${arch} VMs (ask your admin which), or make the VM from an ${blade.native[0] === 'aarch64' ? 'arm64' : 'amd64'} box.` : 'Make the VM from an amd64 or arm64 box.',
      ],
    })
  }
  if (blade.native.includes(arch)) return {arch, mode: 'native'}
  return {arch, mode: 'emulated', note: `${host} runs ${arch} VMs emulated (TCG), not natively: expect this VM to be ${EMULATED_SLOWDOWN}`}
}
