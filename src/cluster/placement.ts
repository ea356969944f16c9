import {ShienError} from '../errors.js'
import type {GuestArch} from '../config/blade-arch.js'
import {bladeNamed, type ClusterBlade} from './blades.js'
import type {ClusterView} from '../protocol/blade-steps.js'

/**
 * Which blade a VM goes to (docs/cluster.md): one that answers, is not drained, runs the VM's
 * architecture natively, has room for its memory and is under its VM bound; of those, the one
 * running the fewest VMs, ties going to the first name. `--blade NAME` picks the blade instead,
 * and is refused when that blade cannot take the VM. Pure: the facts are gathered by the caller
 * (one query per blade), and every blade not chosen comes back with the reason, for the student.
 */

/** What a blade said about itself when asked, or that it did not answer. */
export type BladeFacts =
  | {reachable: false; /** What went wrong, as the connection reported it. */ why: string}
  | {
    reachable: true
    /** Drained by an admin (`shien admin drain`): takes no new VMs. */
    drained: boolean
    /** The blade's memory as libvirt reports it (`virsh nodememstats` total), in MiB. */
    memoryMiB: number
    /** What the VMs running there have (their `<memory>`), together, in MiB. */
    runningMiB: number
    /** That blade's own bound on its running VMs' memory (its config's bladeMemoryMiB), when it gives one. */
    capMiB?: number
    /** How many VMs run there. */
    runningVms: number
    /** The architectures it runs natively by its own account (its archSettings); the config's list when absent. */
    native?: GuestArch[]
  }

/** The VM to place. */
export interface PlacementRequest {
  /** `e195701-01`, for messages. */
  name: string
  arch: GuestArch
  memoryMiB: number
  /** `--blade NAME`: this blade or none. */
  blade?: string
}

/** Why a blade was not chosen. */
export type PassedOverCode = 'UNREACHABLE' | 'DRAINED' | 'NOT_NATIVE' | 'FULL' | 'NO_MEMORY' | 'BUSIER' | 'TIE' | 'NOT_ASKED'
  /** The slot is already on another blade: a re-push goes there (src/push/push-placement.ts). */
  | 'SLOT_ON_OTHER'

export interface PassedOver {
  blade: string
  code: PassedOverCode
  /** One line for the student: `blade2: runs aarch64 natively, not x86_64`. */
  reason: string
}

/** What placement reads of a blade's entry in the cluster section (the laptop has these from hello). */
export type PlaceableBlade = Pick<ClusterBlade, 'name' | 'native' | 'keepFreeMiB' | 'maxVms'>

export interface Placement<B extends PlaceableBlade = ClusterBlade> {
  blade: B
  /** Every other blade of the cluster, in the config's order, with why it was not chosen. */
  passedOver: PassedOver[]
}

/** The blade `vm` goes to; throws NO_BLADE when none can take it, BLADE_CANNOT_TAKE when `--blade`'s cannot. */
export function placeVm<B extends PlaceableBlade = ClusterBlade>(cluster: {blades: readonly B[]}, facts: ReadonlyMap<string, BladeFacts>, vm: PlacementRequest): Placement<B> {
  const refusals = new Map(cluster.blades.map((blade) => [blade.name, refusal(blade, facts.get(blade.name), vm)]))
  if (vm.blade !== undefined) {
    const asked = bladeNamed(cluster, vm.blade)
    const why = refusals.get(asked.name)
    if (why !== undefined) throw cannotTake(vm, why, cluster.blades.filter((b) => refusals.get(b.name) === undefined))
    const passedOver = others(cluster, asked, (b) => refusals.get(b.name) ?? {blade: b.name, code: 'NOT_ASKED', reason: `--blade ${asked.name} was asked for`})
    return {blade: asked, passedOver}
  }
  const able = cluster.blades.filter((b) => refusals.get(b.name) === undefined)
  const running = (b: B) => (facts.get(b.name) as Extract<BladeFacts, {reachable: true}>).runningVms
  const ranked = able.toSorted((a, b) => running(a) - running(b) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  const chosen = ranked[0]
  if (chosen === undefined) throw noBlade(vm, [...refusals.values()].filter((r) => r !== undefined))
  const passedOver = others(cluster, chosen, (b) => refusals.get(b.name) ?? (running(b) === running(chosen)
    ? {blade: b.name, code: 'TIE', reason: `runs as many VMs as ${chosen.name} (${running(b)}), which comes first by name`}
    : {blade: b.name, code: 'BUSIER', reason: `runs ${vms(running(b))}, ${chosen.name} ${running(chosen)}`}))
  return {blade: chosen, passedOver}
}

/** Free memory for VMs on a blade, in MiB: libvirt's memory minus its running VMs' and what is kept free, within its own bound. */
export function freeMiB(blade: Pick<PlaceableBlade, 'keepFreeMiB'>, facts: Extract<BladeFacts, {reachable: true}>): number {
  const byNode = facts.memoryMiB - facts.runningMiB - blade.keepFreeMiB
  return facts.capMiB === undefined ? byNode : Math.min(byNode, facts.capMiB - facts.runningMiB)
}

/** Why `blade` cannot take `vm`, or undefined when it can. */
function refusal(blade: PlaceableBlade, facts: BladeFacts | undefined, vm: PlacementRequest): PassedOver | undefined {
  const no = (code: PassedOverCode, reason: string): PassedOver => ({blade: blade.name, code, reason})
  if (facts === undefined) return no('UNREACHABLE', 'was not asked (no answer)')
  if (!facts.reachable) return no('UNREACHABLE', `does not answer (${facts.why})`)
  if (facts.drained) return no('DRAINED', 'is drained for maintenance')
  const native = blade.native.filter((arch) => facts.native === undefined || facts.native.includes(arch))
  if (!native.includes(vm.arch)) return no('NOT_NATIVE', native.length === 0 ? `runs no architecture natively now, not ${vm.arch}` : `runs ${native.join(' and ')} natively, not ${vm.arch}`)
  if (blade.maxVms !== undefined && facts.runningVms >= blade.maxVms) return no('FULL', `runs ${vms(facts.runningVms)}, its most (maxVms ${blade.maxVms})`)
  const free = freeMiB(blade, facts)
  if (free < vm.memoryMiB) {
    const kept = blade.keepFreeMiB > 0 ? `, ${blade.keepFreeMiB} kept free` : ''
    const cap = facts.capMiB === undefined ? '' : `, VMs may have ${facts.capMiB} together`
    return no('NO_MEMORY', `has ${Math.max(0, free)} MiB free for VMs (${facts.memoryMiB} MiB, ${facts.runningMiB} MiB used by ${vms(facts.runningVms)} running${kept}${cap}), ${vm.name} needs ${vm.memoryMiB}`)
  }
  return undefined
}

function others<B extends PlaceableBlade>(cluster: {blades: readonly B[]}, chosen: B, why: (b: B) => PassedOver): PassedOver[] {
  return cluster.blades.filter((b) => b.name !== chosen.name).map((b) => why(b))
}

const vms = (n: number) => `${n} VM${n === 1 ? '' : 's'}`
const lines = (passed: PassedOver[]) => passed.map((p) => `\n  - ${p.blade}: ${p.reason}`).join('')

function noBlade(vm: PlacementRequest, passed: PassedOver[]): ShienError {
  const onlyMemory = passed.every((p) => p.code === 'NO_MEMORY' || p.code === 'FULL')
  return new ShienError(`No blade can take ${vm.name} (${vm.arch}, ${vm.memoryMiB} MiB):${lines(passed)}`, {
    code: 'NO_BLADE',
    exit: 'refused',
    suggestions: onlyMemory
      ? ['Stop a VM you do not need (shien vm stop), or try again later.']
      : passed.every((p) => p.code === 'NOT_NATIVE')
        ? [`No blade runs ${vm.arch} natively: push a box of an architecture the blades run (docs/box-formats.md).`]
        : ['Try again later; ask an admin if blades stay unreachable or drained.'],
  })
}

function cannotTake(vm: PlacementRequest, why: PassedOver, able: readonly PlaceableBlade[]): ShienError {
  return new ShienError(`${why.blade} cannot take ${vm.name} (${vm.arch}, ${vm.memoryMiB} MiB): it ${why.reason}.`, {
    code: 'BLADE_CANNOT_TAKE',
    exit: 'refused',
    suggestions: able.length > 0
      ? [`Leave out --blade to let shien choose (${able.map((b) => b.name).join(', ')} can take it).`]
      : ['No other blade can take it either right now; try again later.'],
  })
}

/** One blade of the cluster as the laptop knows it from hello, with placement's fields filled in. */
export type KnownBlade = PlaceableBlade & {ssh: string}

/** The blades of a cluster as placement takes them: a field the blade left out puts no bound (its facts still say what it runs). */
export function knownBlades(cluster: ClusterView): KnownBlade[] {
  return cluster.blades.map((b) => ({
    name: b.name,
    ssh: b.ssh,
    native: b.native ?? ['x86_64', 'aarch64'],
    keepFreeMiB: b.keepFreeMiB ?? 0,
    ...(b.maxVms === undefined ? {} : {maxVms: b.maxVms}),
  }))
}
