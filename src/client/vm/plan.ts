import {homedir} from 'node:os'
import {join} from 'node:path'

import {ShienError} from '../../errors.js'
import {loadProjectConfig} from '../../push/project-config.js'
import {resolveSshTarget, type SshTarget} from '../../transport/ssh-target.js'

/** Which blade `shien vm` talks to, and how its host key is checked. */
export interface VmPlan {
  target: SshTarget
  knownHostsPath: string
  acceptNewHostKey: boolean
  /** An admin acting on another account's VMs. */
  account?: string
}

export interface VmInputs {
  host?: string
  acceptNewHostKey?: boolean
  account?: string
  cwd: string
  env: NodeJS.ProcessEnv
}

/**
 * Resolves the blade the way `shien push` does: --host, then SHIEN_HOST, then .shien.json in
 * the current folder (or the user's shien config), through ~/.ssh/config.
 */
export function planVm(input: VmInputs): VmPlan {
  const config = loadProjectConfig(input.cwd, input.env)
  const home = input.env.HOME || homedir()
  const host = input.host ?? input.env.SHIEN_HOST ?? config.host
  if (!host) {
    throw new ShienError('No blade named.', {
      code: 'BAD_HOST',
      exit: 'usage',
      suggestions: ['Pass --host BLADE, or run it in a project set up with shien init.'],
    })
  }
  return {
    target: resolveSshTarget(host, {home}),
    knownHostsPath: join(home, '.ssh', 'known_hosts'),
    acceptNewHostKey: input.acceptNewHostKey ?? false,
    account: input.account,
  }
}

/** ie-virsh's arguments for a plan: the command, its own arguments, then --account if any. */
export function ieVirshArgs(plan: VmPlan, args: string[]): string[] {
  return plan.account === undefined ? args : [...args, '--account', plan.account]
}
