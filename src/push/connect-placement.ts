import {existsSync} from 'node:fs'

import {inspectBox, type BoxInfo} from '../box/inspect.js'
import type {BladeClient} from '../client/blade-client.js'
import {clusterFromHello} from '../client/cluster-answer.js'
import {askBlades} from '../client/cluster-facts.js'
import {oneAtATime, planAtAddress} from '../client/vm/cluster-plans.js'
import {bladeNamed} from '../cluster/blades.js'
import {factsFromJson} from '../cluster/facts.js'
import {knownBlades, type BladeFacts} from '../cluster/placement.js'
import {guestArchOf, type GuestArch} from '../config/blade-arch.js'
import {ShienError} from '../errors.js'
import type {StageIO} from '../pipeline/runner.js'
import type {HelloResult} from '../protocol/blade-steps.js'
import type {PushContext, VirshList} from './context.js'
import {keptPaths} from './kept-box.js'
import type {PushPlan} from './plan.js'
import {describePlacement, placePush, slotHolder, type PushPlacement} from './push-placement.js'

/**
 * Placement in the connect stage (docs/cluster.md): when the first blade's hello describes a
 * cluster of several blades, every blade is asked at once for its facts and the student's VMs
 * (the first over the connection already open), and `placePush` decides. Returns the placement
 * and the plan aimed at the chosen blade, or undefined when the push stays where it is as
 * before: no cluster, one blade, or a cluster answer shien cannot use (said on stderr).
 */
export async function placeOnCluster(ctx: PushContext, io: StageIO, first: BladeClient, hello: HelloResult): Promise<{placement: PushPlacement; plan: PushPlan} | undefined> {
  const {plan} = ctx
  const answer = clusterFromHello(hello)
  if (!answer.ok) {
    if (plan.blade !== undefined) throw noCluster(plan, answer.why)
    io.emit({type: 'note', stage: 'connect', message: `pushing to ${plan.target.alias}: ${answer.why}`})
    return undefined
  }
  const {cluster} = answer
  if (cluster === undefined) {
    if (plan.blade !== undefined) throw noCluster(plan, `${plan.target.alias} describes no cluster of blades`)
    return undefined
  }
  const blades = knownBlades(cluster)
  if (plan.blade !== undefined) bladeNamed({blades}, plan.blade)
  if (blades.length < 2) return undefined

  const others = blades.filter((b) => b.name !== cluster.self)
  const confirmNewHostKey = oneAtATime(ctx.confirmHostKey)
  const [firstAnswer, otherAnswers, box] = await Promise.all([
    askFirst(first, cluster.self, io.signal),
    askBlades(others, (b) => ({target: planAtAddress(plan, b.ssh).target, confirmNewHostKey, agentSocket: ctx.agentSocket, askPassphrase: ctx.askPassphrase, signal: io.signal}),
      async (client, b, signal) => ({facts: factsFromJson(b.name, await client.virsh<unknown>(['facts'], {signal})), list: await client.virsh<VirshList>(['list'], {signal})}),
      {signal: io.signal}),
    boxBeforePackage(plan, io.signal),
  ])
  if (box !== undefined) ctx.inspected = box
  const facts = new Map<string, BladeFacts>([[cluster.self, firstAnswer.facts]])
  const lists = new Map<string, VirshList | undefined>([[cluster.self, firstAnswer.list]])
  for (const [name, other] of otherAnswers) {
    facts.set(name, other.ok ? other.value.facts : {reachable: false, why: other.why})
    lists.set(name, other.ok ? other.value.list : undefined)
  }
  const declared = box?.box.architecture === undefined ? undefined : guestArchOf(box.box.architecture)
  const placement = placePush({
    cluster,
    facts,
    holder: slotHolder(lists, plan.slot),
    vm: {
      name: `${hello.account}-${plan.slot}`,
      arch: declared ?? laptopArch(),
      archFrom: declared === undefined ? 'laptop' : 'box',
      memoryMiB: firstAnswer.list.limits?.memoryMiB ?? 0,
      blade: plan.blade,
    },
  })
  io.emit({type: 'note', stage: 'connect', message: describePlacement(placement)})
  const chosen = placement.blade === cluster.self ? plan : planAtAddress(plan, placement.ssh)
  return {placement, plan: chosen}
}

/** The first blade's facts and list, over the connection the push already has. */
async function askFirst(first: BladeClient, self: string, signal: AbortSignal): Promise<{facts: BladeFacts; list: VirshList}> {
  const list = await first.virsh<VirshList>(['list'], {signal})
  let facts: BladeFacts
  try {
    facts = factsFromJson(self, await first.virsh<unknown>(['facts'], {signal}))
  } catch (error) {
    if (signal.aborted) throw error
    facts = {reachable: false, why: (error instanceof Error ? error.message : String(error)).replace(/\s+/g, ' ').trim()}
  }
  return {facts, list}
}

/**
 * The box the package stage will take without packaging (a named file, or one kept from a push
 * that did not finish), read now for its architecture; the package stage takes this reading
 * instead of reading the box again. A box that does not read is left to the package stage, which
 * says why.
 */
async function boxBeforePackage(plan: PushPlan, signal: AbortSignal): Promise<{path: string; box: BoxInfo} | undefined> {
  const kept = plan.keepDir === undefined || plan.repackage ? undefined : keptPaths(plan.keepDir, plan.name).box
  const path = plan.boxPath ?? (kept !== undefined && existsSync(kept) ? kept : undefined)
  if (path === undefined) return undefined
  try {
    return {path, box: await inspectBox(path, {signal})}
  } catch (error) {
    if (signal.aborted) throw error
    return undefined
  }
}

/**
 * The architecture of a VM not yet packaged: the laptop's own. Vagrant's providers on a laptop
 * (VirtualBox, VMware, libvirt) run guests natively; the upload stage checks the packaged box
 * against the chosen blade again (BLADE_ARCH_UNSUPPORTED, or the note on emulation).
 */
export function laptopArch(arch: string = process.arch): GuestArch {
  return arch === 'arm64' ? 'aarch64' : 'x86_64'
}

function noCluster(plan: PushPlan, why: string): ShienError {
  return new ShienError(`There is no blade "${plan.blade}" to push to: ${why}.`, {
    code: 'UNKNOWN_BLADE',
    exit: 'usage',
    suggestions: ['Leave out --blade to push to the blade --host names, or name the blade with --host.'],
  })
}
