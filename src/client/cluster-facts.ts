import {ShienError} from '../errors.js'
import type {ClusterBlade} from '../cluster/blades.js'
import {factsFromJson} from '../cluster/facts.js'
import type {BladeFacts} from '../cluster/placement.js'
import type {ConnectOptions} from '../transport/connect.js'
import {BladeClient, withBlade} from './blade-client.js'

export interface AskFactsOptions {
  /** The command's signal: aborting it aborts every question (and is not "unreachable"). */
  signal?: AbortSignal
  /** How long one blade may take, connection included; 20 s by default. */
  timeoutMs?: number
}

const DEFAULT_TIMEOUT_MS = 20_000

/**
 * Asks every blade of the cluster for its facts (`sudo -n ie-virsh facts --json` over SSH, one
 * connection each, all at once) for placement (docs/cluster.md). A blade that cannot be reached,
 * refuses, takes longer than the timeout or answers with something that is not its facts is
 * reported as unreachable with why, never fatal: placement passes it over. `access` gives the
 * connection options of a blade (its `ssh` address resolved through the laptop's SSH config);
 * its host key prompt, if any, is the caller's to serialise.
 */
export async function askBladesForFacts(
  blades: readonly ClusterBlade[],
  access: (blade: ClusterBlade) => ConnectOptions | Promise<ConnectOptions>,
  o: AskFactsOptions = {},
): Promise<Map<string, BladeFacts>> {
  const answers = await askBlades(blades, access, async (client, blade, signal) => factsFromJson(blade.name, await client.virsh<unknown>(['facts'], {signal})), o)
  return new Map([...answers].map(([name, answer]) => [name, answer.ok ? answer.value : {reachable: false, why: answer.why}]))
}

/** A blade's answer to a question asked of every blade, or why there is none. */
export type BladeAnswer<T> = {ok: true; value: T} | {ok: false; why: string}

/**
 * Runs `work` on every blade at once, one connection each, each within the timeout (connection
 * included). A blade that cannot be reached, refuses or takes too long comes back with why,
 * never thrown; the command's own abort (Ctrl-C) rejects.
 */
export async function askBlades<B extends Pick<ClusterBlade, 'name'>, T>(
  blades: readonly B[],
  access: (blade: B) => ConnectOptions | Promise<ConnectOptions>,
  work: (client: BladeClient, blade: B, signal: AbortSignal) => Promise<T>,
  o: AskFactsOptions = {},
): Promise<Map<string, BladeAnswer<T>>> {
  const answers = await Promise.all(blades.map(async (blade) => [blade.name, await askOne(blade, access, work, o)] as const))
  return new Map(answers)
}

async function askOne<B extends Pick<ClusterBlade, 'name'>, T>(
  blade: B,
  access: (blade: B) => ConnectOptions | Promise<ConnectOptions>,
  work: (client: BladeClient, blade: B, signal: AbortSignal) => Promise<T>,
  o: AskFactsOptions,
): Promise<BladeAnswer<T>> {
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const timeout = AbortSignal.timeout(timeoutMs)
  const signal = o.signal === undefined ? timeout : AbortSignal.any([o.signal, timeout])
  try {
    const value = await withBlade({...(await access(blade)), signal, timeoutMs}, (connection) => work(new BladeClient(connection), blade, signal))
    return {ok: true, value}
  } catch (error) {
    if (o.signal?.aborted) throw o.signal.reason
    if (timeout.aborted) return {ok: false, why: `no answer within ${Math.round(timeoutMs / 1000)} s`}
    return {ok: false, why: reasonOf(error)}
  }
}

function reasonOf(error: unknown): string {
  const message = (error instanceof Error ? error.message : String(error)).replace(/\s+/g, ' ').trim()
  return error instanceof ShienError ? `${error.code}: ${message}` : message
}
