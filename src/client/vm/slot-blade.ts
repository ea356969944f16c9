import {ShienError} from '../../errors.js'
import {parseSlot} from '../../names.js'
import type {ListResult} from '../../virsh/list.js'
import type {Connection} from '../../transport/connect.js'
import {askCluster, oneQuestionAtATime, onOtherBlade, otherBladePlans, type OtherBlade} from './cluster-plans.js'
import {ieVirshArgs, type VmPlan} from './plan.js'
import {bladeConnection, onBlade, type VmDeps} from './session.js'
import {BladeClient, withBlade} from '../blade-client.js'

/** What the blade named says when the slot is not its to act on. */
const NOT_HERE = new Set(['NOT_DEFINED', 'SLOT_ELSEWHERE'])

/**
 * Runs `work` for a slot on the blade it is on. It runs on the blade the student named first, as
 * before clusters; only when that blade answers that the slot is not defined there (NOT_DEFINED)
 * or is recorded on another blade (SLOT_ELSEWHERE), and it is a blade of a cluster (`shien blade
 * hello`), the other blades are asked for their lists at once, and `work` runs once more on the
 * blade that lists the slot as its own (the one its record names). A slot found nowhere keeps the
 * first blade's error. So a blade with no cluster section sees exactly what it saw before.
 */
export async function onSlotBlade<T>(plan: VmPlan, slot: string, deps: VmDeps, work: (plan: VmPlan, blade: BladeClient, connection: Connection) => Promise<T>): Promise<T> {
  const asked = oneQuestionAtATime(deps)
  const elsewhere = await onBlade(plan, asked, async (blade, connection) => {
    try {
      return {done: true as const, value: await work(plan, blade, connection)}
    } catch (error) {
      if (!(error instanceof ShienError && NOT_HERE.has(error.code))) throw error
      // The blade took the slot as typed ("2" is 02), so the same rule cannot refuse it here.
      const holder = await findHolder(plan, blade, parseSlot(slot), asked)
      if (holder === undefined) throw error
      return {done: false as const, holder}
    }
  })
  if (elsewhere.done) return elsewhere.value
  const other = elsewhere.holder.plan
  return withBlade(bladeConnection(other, asked), (connection) => work(other, new BladeClient(connection), connection))
}

/** The other blade that lists `slot` as its own, if any (an unreachable blade is passed over). */
async function findHolder(plan: VmPlan, blade: BladeClient, slot: string, deps: VmDeps): Promise<OtherBlade | undefined> {
  const answer = await askCluster(blade, deps.signal)
  if (!answer.ok || answer.cluster === undefined) return undefined
  const others = otherBladePlans(plan, answer.cluster)
  const found = await Promise.all(others.map(async (other) => {
    const r = await onOtherBlade(other, deps, (client, signal) => client.virsh<ListResult>(ieVirshArgs(other.plan, ['list']), {signal}))
    const domain = r.ok ? r.value.domains.find((d) => d.slot === slot) : undefined
    return domain === undefined ? undefined : {other, own: domain.recordedOn === undefined}
  }))
  const listed = found.filter((f) => f !== undefined)
  return (listed.find((f) => f.own) ?? listed[0])?.other
}

/**
 * Fails with NOT_DEFINED when the blade's list has no VM in `slot`: for a command whose own
 * refusal is not JSON (the console's terminal), so onSlotBlade can look for the slot elsewhere.
 */
export async function requireListed(plan: VmPlan, blade: BladeClient, slot: string, signal: AbortSignal): Promise<void> {
  const list = await blade.virsh<ListResult>(ieVirshArgs(plan, ['list']), {signal})
  if (list.domains.some((d) => d.slot === slot)) return
  throw new ShienError(`Slot ${slot} has no VM (${list.account}-${slot} is not defined).`, {
    code: 'NOT_DEFINED', exit: 'refused', suggestions: ['Push one first: shien push --slot ' + slot, 'See your VMs: shien vm list'],
  })
}
