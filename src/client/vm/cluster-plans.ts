import {userInfo} from 'node:os'

import type {ClusterView} from '../../protocol/blade-steps.js'
import {resolveSshTarget} from '../../transport/ssh-target.js'
import {BladeClient, withBlade} from '../blade-client.js'
import {clusterFromHello, type ClusterAnswer} from '../cluster-answer.js'
import type {VmPlan} from './plan.js'
import {bladeConnection, type VmDeps} from './session.js'
import {bladeNaming} from './vm-login.js'

/** One of the cluster's other blades, and how `shien vm` reaches it. */
export interface OtherBlade {
  name: string
  ssh: string
  plan: VmPlan
}

/**
 * How the laptop reaches each of the cluster's blades other than the one it asked: the blade's
 * `ssh` address (HOST[:PORT]) resolved through `ssh -G` as any host is, so the student's
 * ~/.ssh/config (`Host blade*.example` with User, IdentityFile, ProxyJump, known_hosts...) applies,
 * and the command's --jump hops too. Where the configuration gives the address no user (`ssh -G`
 * reports the laptop's own login name), the user the first blade was reached as is used: the
 * blades share their accounts. Host keys are checked as for the first blade.
 */
export function otherBladePlans(first: VmPlan, cluster: ClusterView): OtherBlade[] {
  const others = cluster.blades.filter((b) => b.name !== cluster.self)
  return others.map((blade) => ({...blade, plan: planAtAddress(first, blade.ssh)}))
}

/** `first`'s plan, aimed at another blade's `address` by the rule above (`shien vm` and the push's placement). */
export function planAtAddress<P extends Pick<VmPlan, 'target' | 'naming'>>(first: P, address: string): P {
  const env = {home: first.naming.home, jump: first.naming.jump}
  let spec = address
  let target = resolveSshTarget(spec, env)
  if (target.user === userInfo().username && first.target.user !== target.user) {
    spec = `${first.target.user}@${address}`
    target = resolveSshTarget(spec, env)
  }
  return {...first, target, naming: bladeNaming(spec, first.naming.jump, first.naming.home)}
}

/**
 * Asks the blade on `blade` for its cluster (`shien blade hello`). A blade whose shien does not
 * answer hello (not installed, another protocol) is taken as one blade on its own, as before the
 * cluster section existed: the commands that only need ie-virsh work there as they did.
 */
export async function askCluster(blade: BladeClient, signal: AbortSignal): Promise<ClusterAnswer> {
  let hello: unknown
  try {
    hello = await blade.call('hello', {}, {signal})
  } catch {
    if (signal.aborted) throw signal.reason
    return {ok: true}
  }
  return clusterFromHello(hello)
}

/** How long one of the other blades may take to answer, connection included. */
export const OTHER_BLADE_TIMEOUT_MS = 20_000

/**
 * Runs `work` on another blade within the timeout; what went wrong comes back as `why`, never
 * thrown, except the command's own abort (Ctrl-C).
 */
export async function onOtherBlade<T>(other: OtherBlade, deps: VmDeps, work: (blade: BladeClient, signal: AbortSignal) => Promise<T>, timeoutMs = OTHER_BLADE_TIMEOUT_MS): Promise<{ok: true; value: T} | {ok: false; why: string}> {
  const timeout = AbortSignal.timeout(timeoutMs)
  const signal = AbortSignal.any([deps.signal, timeout])
  try {
    const value = await withBlade({...bladeConnection(other.plan, {...deps, signal}), timeoutMs}, (connection) => work(new BladeClient(connection), signal))
    return {ok: true, value}
  } catch (error) {
    if (deps.signal.aborted) throw deps.signal.reason
    if (timeout.aborted) return {ok: false, why: `no answer within ${Math.round(timeoutMs / 1000)} s`}
    const message = (error instanceof Error ? error.message : String(error)).replace(/\s+/g, ' ').trim()
    const code = (error as {code?: unknown}).code
    return {ok: false, why: typeof code === 'string' && /^[A-Z_]+$/.test(code) ? `${code}: ${message}` : message}
  }
}

/** Host key questions one at a time: blades asked at once must not prompt over each other. */
export function oneQuestionAtATime(deps: VmDeps): VmDeps {
  return {...deps, confirmHostKey: oneAtATime(deps.confirmHostKey)}
}

/** `confirm`, asked one question at a time (the push's placement asks the blades at once too). */
export function oneAtATime(confirm: VmDeps['confirmHostKey']): VmDeps['confirmHostKey'] {
  let queue: Promise<unknown> = Promise.resolve()
  return (key) => {
    const answer = queue.then(() => confirm(key))
    queue = answer.catch(() => undefined)
    return answer
  }
}
