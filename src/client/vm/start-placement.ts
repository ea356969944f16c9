import {factsFromJson} from '../../cluster/facts.js'
import {knownBlades, placeVm, type BladeFacts, type KnownBlade, type PassedOver, type Placement} from '../../cluster/placement.js'
import {vmShape, type VmShape} from '../../cluster/vm-shape.js'
import {bladeNamed} from '../../cluster/blades.js'
import {ShienError} from '../../errors.js'
import {parseSlot} from '../../names.js'
import type {StartResult} from '../../virsh/lifecycle.js'
import type {ListResult} from '../../virsh/list.js'
import {BladeClient, withBlade} from '../blade-client.js'
import {askBlades} from '../cluster-facts.js'
import {askCluster, oneQuestionAtATime, otherBladePlans} from './cluster-plans.js'
import {ieVirshArgs, type VmPlan} from './plan.js'
import {bladeConnection, type VmDeps} from './session.js'
import {onSlotBlade} from './slot-blade.js'

/**
 * `shien vm start` on a cluster (docs/cluster.md). A VM that is not running starts on the blade
 * that has its slot when that blade can take it (it answers, is not drained, runs the VM's
 * architecture natively, has the memory, is under its VM bound): starting where it is defined
 * moves nothing. When that blade cannot, the VM starts on the blade placement picks, its
 * definition moved there first: ie-virsh undefines it on its blade (the image, on the shared
 * storage, stays) and defines it on the chosen one, which claims the slot's record. `--blade NAME`
 * picks the blade. A define the chosen blade refuses puts the definition back where it was.
 * Without a cluster, or for a VM that runs, it is the plain `ie-virsh start` of before.
 */

/** Where `vm start` started the VM, and why. */
export interface StartPlacement {
  blade: string
  /** `slot`: where the VM was defined; `placement`: that blade could not take it; `--blade`: asked for. */
  by: 'slot' | 'placement' | '--blade'
  /** The blade it was defined on, when it moved. */
  movedFrom?: string
  passedOver: PassedOver[]
  vm: VmShape
}

export interface PlacedStart {
  result: StartResult
  plan: VmPlan
  placement?: StartPlacement
}

export async function startPlaced(plan: VmPlan, rawSlot: string, deps: VmDeps, o: {blade?: string} = {}): Promise<PlacedStart> {
  const slot = parseSlot(rawSlot)
  const asked = oneQuestionAtATime(deps)
  const start = async (on: VmPlan, blade: BladeClient) => blade.virsh<StartResult>(ieVirshArgs(on, ['start', slot]), {signal: deps.signal})
  return onSlotBlade(plan, slot, asked, async (on, blade): Promise<PlacedStart> => {
    const list = await blade.virsh<ListResult>(ieVirshArgs(on, ['list']), {signal: deps.signal})
    const domain = list.domains.find((d) => d.slot === slot && d.recordedOn === undefined)
    // Not here (start's own answer sends onSlotBlade to the slot's blade), or running: as before.
    if (domain === undefined || domain.state !== 'shut off') {
      if (o.blade !== undefined && domain !== undefined) throw notStopped(slot, o.blade)
      return {result: await start(on, blade), plan: on}
    }
    const answer = await askCluster(blade, deps.signal)
    const cluster = answer.ok ? answer.cluster : undefined
    if (cluster === undefined || cluster.blades.length < 2) {
      if (o.blade !== undefined) throw noCluster(o.blade, answer.ok ? 'the blade describes no cluster of blades' : answer.why)
      return {result: await start(on, blade), plan: on}
    }
    const blades = knownBlades(cluster)
    if (o.blade !== undefined) bladeNamed({blades}, o.blade)
    const shape = vmShape((await blade.virsh<{xml: string}>(ieVirshArgs(on, ['dumpxml', slot]), {signal: deps.signal})).xml)
    const others = otherBladePlans(on, cluster)
    const facts = await clusterFacts(blade, on, cluster.self, others, asked)
    const placed = choose(blades, facts, cluster.self, {name: `${list.account}-${slot}`, ...shape}, o.blade)
    const placement: StartPlacement = {blade: placed.placement.blade.name, by: placed.by, passedOver: placed.placement.passedOver, vm: shape}
    if (placement.blade === cluster.self) return {result: await start(on, blade), plan: on, placement}

    const target = others.find((b) => b.name === placement.blade)
    if (target === undefined) throw new Error(`Internal error: placement chose ${placement.blade}, which is not among the other blades.`)
    await blade.virsh(ieVirshArgs(on, ['undefine', slot]), {signal: deps.signal})
    const moved = await withBlade(bladeConnection(target.plan, asked), async (connection) => {
      const there = new BladeClient(connection)
      try {
        await there.virsh(ieVirshArgs(target.plan, ['define', slot]), {signal: deps.signal})
      } catch (error) {
        // Back where it was: the definition is the VM's, the image never moved.
        await blade.virsh(ieVirshArgs(on, ['define', slot]), {signal: deps.signal}).catch(() => undefined)
        throw error
      }
      return start(target.plan, there)
    })
    return {result: moved, plan: target.plan, placement: {...placement, movedFrom: cluster.self}}
  })
}

/** The facts of the slot's blade (over its connection) and of the others (one connection each, at once). */
async function clusterFacts(blade: BladeClient, on: VmPlan, self: string, others: ReturnType<typeof otherBladePlans>, deps: VmDeps): Promise<Map<string, BladeFacts>> {
  const own = async (): Promise<BladeFacts> => {
    try {
      return factsFromJson(self, await blade.virsh<unknown>(ieVirshArgs(on, ['facts']), {signal: deps.signal}))
    } catch (error) {
      if (deps.signal.aborted) throw error
      return {reachable: false, why: error instanceof Error ? error.message : String(error)}
    }
  }
  const [mine, theirs] = await Promise.all([
    own(),
    askBlades(others, (b) => bladeConnection(b.plan, deps), async (client, b, signal) => factsFromJson(b.name, await client.virsh<unknown>(ieVirshArgs(b.plan, ['facts']), {signal})), {signal: deps.signal}),
  ])
  const facts = new Map<string, BladeFacts>([[self, mine]])
  for (const [name, answer] of theirs) facts.set(name, answer.ok ? answer.value : {reachable: false, why: answer.why})
  return facts
}

/** `--blade`'s blade, else the slot's blade if it can take the VM, else placement's choice. */
function choose(blades: KnownBlade[], facts: ReadonlyMap<string, BladeFacts>, self: string, vm: {name: string} & VmShape, asked: string | undefined): {placement: Placement<KnownBlade>; by: StartPlacement['by']} {
  if (asked !== undefined) return {placement: placeVm({blades}, facts, {...vm, blade: asked}), by: '--blade'}
  try {
    return {placement: placeVm({blades}, facts, {...vm, blade: self}), by: 'slot'}
  } catch (error) {
    if (!(error instanceof ShienError && error.code === 'BLADE_CANNOT_TAKE')) throw error
  }
  return {placement: placeVm({blades}, facts, vm), by: 'placement'}
}

/** The line the student reads about where the VM started. */
export function describeStartPlacement(p: StartPlacement): string {
  if (p.movedFrom === undefined) return `Starting on ${p.blade}${p.by === '--blade' ? ', as --blade asked' : ', where it is defined'}.`
  const why = p.by === '--blade' ? 'as --blade asked' : `${p.movedFrom} cannot take it now (${p.passedOver.find((o) => o.blade === p.movedFrom)?.reason ?? 'see the blades'})`
  return `Starting on ${p.blade}, ${why}: the VM's definition moved there from ${p.movedFrom}; its image stays on the shared storage.`
}

function notStopped(slot: string, blade: string): ShienError {
  return new ShienError(`Slot ${slot}'s VM is not stopped, so it stays on its blade: --blade ${blade} places only a VM that starts.`, {
    code: 'VM_NOT_STOPPED',
    exit: 'refused',
    suggestions: [`Stop it first (shien vm stop ${slot}), then start it with --blade ${blade}; or ask an admin to migrate it live (shien admin migrate).`],
  })
}

function noCluster(blade: string, why: string): ShienError {
  return new ShienError(`There is no blade "${blade}" to start on: ${why}.`, {
    code: 'UNKNOWN_BLADE',
    exit: 'usage',
    suggestions: ['Leave out --blade to start the VM where it is defined.'],
  })
}
