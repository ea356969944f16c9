import {BladeClient, withBlade} from '../blade-client.js'
import type {Connection, ConnectOptions, NewHostKey} from '../../transport/connect.js'
import type {VmPlan} from './plan.js'
import {ieVirshArgs} from './plan.js'
import type {AskPassphrase} from '../../transport/ssh-auth.js'

export interface VmDeps {
  signal: AbortSignal
  confirmHostKey: (key: NewHostKey) => Promise<boolean>
  agentSocket?: string
  /** Asks a key file's passphrase on a terminal. */
  askPassphrase?: AskPassphrase
}

/** How `shien vm` and `shien container` reach the plan's blade: the connection `shien push` opens. */
export function bladeConnection(plan: VmPlan, deps: VmDeps): ConnectOptions {
  return {
    target: plan.target,
    confirmNewHostKey: deps.confirmHostKey,
    agentSocket: deps.agentSocket,
    askPassphrase: deps.askPassphrase,
    signal: deps.signal,
  }
}

/** Opens the plan's blade, runs `work` on it, and closes it. */
export function onBlade<T>(plan: VmPlan, deps: VmDeps, work: (blade: BladeClient, connection: Connection) => Promise<T>): Promise<T> {
  return withBlade(bladeConnection(plan, deps), (connection) => work(new BladeClient(connection), connection))
}

/** Runs `sudo -n ie-virsh ARGS --json` on the blade and returns its result object. */
export function callIeVirsh<T>(plan: VmPlan, args: string[], deps: VmDeps): Promise<T> {
  return onBlade(plan, deps, (blade) => blade.virsh<T>(ieVirshArgs(plan, args), {signal: deps.signal}))
}
