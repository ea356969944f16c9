import {BladeClient} from '../blade-client.js'
import {connect, type Connection, type NewHostKey} from '../../transport/connect.js'
import type {VmPlan} from './plan.js'
import {ieVirshArgs} from './plan.js'

export interface VmDeps {
  signal: AbortSignal
  confirmHostKey: (key: NewHostKey) => Promise<boolean>
  agentSocket?: string
}

/** Opens the SSH connection `shien push` uses (known_hosts checked), runs `work`, and closes it. */
export async function withBlade<T>(plan: VmPlan, deps: VmDeps, work: (connection: Connection) => Promise<T>): Promise<T> {
  const connection = await connect({
    target: plan.target,
    knownHostsPath: plan.knownHostsPath,
    confirmNewHostKey: deps.confirmHostKey,
    agentSocket: deps.agentSocket,
    signal: deps.signal,
  })
  try {
    return await work(connection)
  } finally {
    connection.close()
  }
}

/** Runs `sudo -n ie-virsh ARGS --json` on the blade and returns its result object. */
export function callIeVirsh<T>(plan: VmPlan, args: string[], deps: VmDeps): Promise<T> {
  return withBlade(plan, deps, (connection) => new BladeClient(connection).virsh<T>(ieVirshArgs(plan, args), {signal: deps.signal}))
}
