import {bladeNamed} from '../cluster/blades.js'
import {knownBlades, placeVm, type BladeFacts, type PassedOver, type PlacementRequest} from '../cluster/placement.js'
import type {GuestArch} from '../config/blade-arch.js'
import {ShienError} from '../errors.js'
import type {ClusterView} from '../protocol/blade-steps.js'

/**
 * Which blade of the cluster a push goes to (docs/cluster.md, "Placement"). Pure: the caller
 * asked every blade for its facts and its list of the student's VMs.
 *
 * - A slot already on a blade (a re-push, `--replace`) goes back to that blade: a slot is one
 *   VM across the blades, and moving it is an admin's migration. `--blade` naming another blade
 *   is refused (SLOT_ELSEWHERE), as is a slot recorded on a blade the cluster does not list.
 * - Otherwise `placeVm` chooses, or checks the blade `--blade` names (BLADE_CANNOT_TAKE).
 * - `--blade` naming no blade of the cluster is UNKNOWN_BLADE.
 */

/** What `ie-virsh list --json` returns (the fields the laptop reads). */
export interface VirshList {
  account?: string
  /** `memoryMiB`: what each of the owner's VMs has, for placement. */
  limits?: {vms?: number; memoryMiB?: number}
  /** `recordedOn`: the blade the slot's record names, when it is not the listing one (docs/cluster.md). */
  domains?: Array<{slot: string; name: string; state: string; sshPort?: number; ssh?: string; recordedOn?: string}>
}

/** Where the push goes, how that was decided, and why every other blade was passed over. */
export interface PushPlacement {
  blade: string
  ssh: string
  /** `placement`: the blade that could take the VM and runs the fewest; `--blade`: asked for; `slot`: the slot is already there. */
  by: 'placement' | '--blade' | 'slot'
  passedOver: PassedOver[]
  /** What the VM was placed as. `archFrom`: read off the box, or the laptop's (the VM is not packaged yet). */
  vm: {arch: GuestArch; archFrom: 'box' | 'laptop'; memoryMiB: number}
}

export interface PushPlacementInput {
  cluster: ClusterView
  facts: ReadonlyMap<string, BladeFacts>
  vm: PlacementRequest & {archFrom: 'box' | 'laptop'}
  /** The blade that has the slot, when one does (`slotHolder`). */
  holder?: string
}

/** Decides the push's blade; throws UNKNOWN_BLADE, SLOT_ELSEWHERE, BLADE_CANNOT_TAKE or NO_BLADE. */
export function placePush(input: PushPlacementInput): PushPlacement {
  const {vm, holder} = input
  const blades = knownBlades(input.cluster)
  if (vm.blade !== undefined) bladeNamed({blades}, vm.blade)
  const placedAs = {arch: vm.arch, archFrom: vm.archFrom, memoryMiB: vm.memoryMiB}
  if (holder !== undefined) {
    const there = blades.find((b) => b.name === holder)
    if (there === undefined || (vm.blade !== undefined && vm.blade !== holder)) throw slotElsewhere(vm, holder, there !== undefined)
    const passedOver = blades.filter((b) => b !== there).map((b): PassedOver => ({
      blade: b.name,
      code: 'SLOT_ON_OTHER',
      reason: `${vm.name} is on ${holder}, where the push replaces it (a slot is one VM across the blades)`,
    }))
    return {blade: there.name, ssh: there.ssh, by: 'slot', passedOver, vm: placedAs}
  }
  const placed = placeVm({blades}, input.facts, vm)
  return {blade: placed.blade.name, ssh: placed.blade.ssh, by: vm.blade === undefined ? 'placement' : '--blade', passedOver: placed.passedOver, vm: placedAs}
}

/**
 * The blade that has `slot`, by the blades' lists (`ie-virsh list` of each blade that answered):
 * the one listing it as its own, else the one a listing blade's record names (`recordedOn`).
 */
export function slotHolder(lists: ReadonlyMap<string, VirshList | undefined>, slot: string): string | undefined {
  let recorded: string | undefined
  for (const [blade, list] of lists) {
    const domain = list?.domains?.find((d) => d.slot === slot)
    if (domain === undefined) continue
    if (domain.recordedOn === undefined) return blade
    recorded ??= domain.recordedOn
  }
  return recorded
}

/** One line for the student: where the VM goes and why each other blade was passed over. */
export function describePlacement(p: PushPlacement): string {
  const why = p.by === 'slot' ? 'the slot is there' : p.by === '--blade' ? 'as --blade asked' : 'it can take the VM and runs the fewest VMs'
  const guessed = p.vm.archFrom === 'laptop' ? ', taken from this laptop until the VM is packaged' : ''
  const passed = p.passedOver.length === 0 ? '' : `; passed over ${p.passedOver.map((o) => `${o.blade} (${o.reason})`).join(', ')}`
  return `placing the VM on ${p.blade}: ${why} (${p.vm.arch}${guessed}, ${p.vm.memoryMiB} MiB)${passed}`
}

function slotElsewhere(vm: PlacementRequest, holder: string, listed: boolean): ShienError {
  if (!listed) {
    return new ShienError(`${vm.name} is recorded on ${holder}, a blade the cluster does not list: shien cannot push to it.`, {
      code: 'SLOT_ELSEWHERE',
      exit: 'refused',
      suggestions: ['Ask an admin to recover the slot onto a blade of the cluster, or push to another slot (--slot).'],
    })
  }
  return new ShienError(`${vm.name} is on ${holder}, so it cannot be pushed to ${vm.blade}: a slot is one VM across the blades, and moving it is an admin's migration (shien admin migrate, not available yet).`, {
    code: 'SLOT_ELSEWHERE',
    exit: 'refused',
    suggestions: [`Leave out --blade to push to ${holder}, where the slot is,`, 'or push to another slot (--slot), or ask an admin to move the VM.'],
  })
}
