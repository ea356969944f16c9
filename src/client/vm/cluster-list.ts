import type {ClusterView} from '../../protocol/blade-steps.js'
import type {ListedDomain, ListResult} from '../../virsh/list.js'
import {renderTable} from '../../text-table.js'
import {describeList} from '../../virsh/list.js'
import {askCluster, oneQuestionAtATime, onOtherBlade, otherBladePlans} from './cluster-plans.js'
import {withLaptopSsh} from './laptop-view.js'
import {ieVirshArgs, type VmPlan} from './plan.js'
import {onBlade, type VmDeps} from './session.js'

/** A VM of the list, with the blade that listed it. */
export type BladeDomain = ListedDomain & {blade: string}

/** Whether a blade of the cluster answered the list, and why not. */
export interface BladeAnswer {
  name: string
  ssh: string
  reachable: boolean
  why?: string
}

/**
 * `shien vm list`'s result: ie-virsh's list, and with a cluster section on the blade, every
 * blade's VMs (`blade` on each) and every blade's answer (`blades`).
 */
export type VmListResult = ListResult | (Omit<ListResult, 'domains'> & {
  domains: BladeDomain[]
  blades: BladeAnswer[]
  /** The blade's description of its cluster could not be used (why): only its own VMs are listed. */
  clusterProblem?: string
})

/**
 * Lists the caller's VMs. On a blade of a cluster (it says so in `shien blade hello`), every
 * blade is asked at once, one connection each (the first blade's is the one already open), and
 * the lists are merged (mergeBladeLists). A blade that does not answer is reported, not fatal;
 * the first blade must answer, as before.
 */
export async function listVms(plan: VmPlan, deps: VmDeps): Promise<VmListResult> {
  const asked = oneQuestionAtATime(deps)
  return onBlade(plan, asked, async (blade) => {
    const [first, answer] = await Promise.all([
      blade.virsh<ListResult>(ieVirshArgs(plan, ['list']), {signal: deps.signal}),
      askCluster(blade, deps.signal),
    ])
    const own = withLaptopSsh(first, plan)
    if (!answer.ok) {
      // The list is still the first blade's; the cluster it described cannot be used.
      const name = plan.target.alias
      return {...own, domains: own.domains.map((d) => ({...d, blade: name})), blades: [{name, ssh: name, reachable: true}], clusterProblem: answer.why}
    }
    if (answer.cluster === undefined) return own
    const others = await listOthers(plan, answer.cluster, asked)
    const lists = [{blade: answer.cluster.self, list: own}, ...others.flatMap((o) => (o.list === undefined ? [] : [{blade: o.name, list: o.list}]))]
    const blades = answer.cluster.blades.map((b): BladeAnswer => {
      const why = others.find((o) => o.name === b.name)?.why
      return why === undefined ? {name: b.name, ssh: b.ssh, reachable: true} : {name: b.name, ssh: b.ssh, reachable: false, why}
    })
    return {...own, domains: mergeBladeLists(lists), blades}
  })
}

/** Every other blade's list at once, its ssh fields for the laptop through that blade; or why it did not answer. */
async function listOthers(plan: VmPlan, cluster: ClusterView, deps: VmDeps): Promise<Array<{name: string; list?: ListResult; why?: string}>> {
  return Promise.all(otherBladePlans(plan, cluster).map(async (other) => {
    const r = await onOtherBlade(other, deps, (client, signal) => client.virsh<ListResult>(ieVirshArgs(other.plan, ['list']), {signal}))
    return r.ok ? {name: other.name, list: withLaptopSsh(r.value, other.plan)} : {name: other.name, why: r.why}
  }))
}

/**
 * The blades' lists as one: a VM appears once, on the blade its slot record names (a blade
 * lists a slot recorded elsewhere with `recordedOn`). A slot listed only by a blade that is not
 * its recorded one (that blade did not answer, or the slot is defined on two blades: an admin's
 * matter) is shown from the first blade that listed it, `recordedOn` kept. Sorted by slot.
 */
export function mergeBladeLists(lists: ReadonlyArray<{blade: string; list: Pick<ListResult, 'domains'>}>): BladeDomain[] {
  const bySlot = new Map<string, BladeDomain>()
  for (const {blade, list} of lists) {
    for (const domain of list.domains) {
      const candidate = {...domain, blade}
      const kept = bySlot.get(domain.slot)
      if (kept === undefined || (kept.recordedOn !== undefined && domain.recordedOn === undefined)) bySlot.set(domain.slot, candidate)
    }
  }
  return [...bySlot.values()].sort((a, b) => a.slot.localeCompare(b.slot))
}

/** The human list: as ie-virsh prints it on one blade, with a BLADE column on a cluster. */
export function describeVmList(r: VmListResult): string {
  if (!('blades' in r)) return describeList(r)
  if (r.domains.length === 0) return `No VMs defined for ${r.account} on ${r.blades.filter((b) => b.reachable).map((b) => b.name).join(', ')}.`
  return renderTable(
    ['SLOT', 'NAME', 'BLADE', 'STATE', 'DEBUG', 'SSH'],
    r.domains.map((d) => [d.slot, d.name, d.blade, d.recordedOn === undefined ? d.state : `${d.state} (recorded on ${d.recordedOn})`, d.debugSocket ?? '-', d.ssh ?? '-']),
  )
}

/** One line per blade that did not answer, for stderr. */
export function unreachableLines(r: VmListResult): string[] {
  if (!('blades' in r)) return []
  const problem = r.clusterProblem === undefined ? [] : [`Only ${r.blades[0].name}'s VMs are listed: ${r.clusterProblem}.`]
  return [...problem, ...r.blades.filter((b) => !b.reachable).map((b) => `Blade ${b.name} (${b.ssh}) did not answer, so its VMs are not listed: ${b.why}`)]
}
