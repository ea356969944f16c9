import {homedir} from 'node:os'

import {ShienError} from '../../errors.js'
import type {SshTarget} from '../../transport/ssh-target.js'
import {bladeHost, findBlade} from '../find-blade.js'
import {loadProjectConfig} from '../project-config.js'
import {bladeNaming, type BladeNaming} from './vm-login.js'

/** Which blade `shien vm` talks to, and how its host key is checked. */
export interface VmPlan {
  target: SshTarget
  acceptNewHostKey: boolean
  /** An admin acting on another account's VMs. */
  account?: string
  /** How the blade was named: what an OpenSSH `ssh` is given to reach it too. */
  naming: BladeNaming
}

export interface VmInputs {
  host?: string
  /** ProxyJump hops from the command line (`--jump`, like `ssh -J`). */
  jump?: string
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
  const blade = findBlade(input, config)
  const spec = bladeHost(input, config)
  if (!blade || spec === undefined) {
    throw new ShienError('No blade named.', {
      code: 'BAD_HOST',
      exit: 'usage',
      suggestions: ['Pass --host BLADE, or run it in a project set up with shien init.'],
    })
  }
  return {
    target: blade.target,
    acceptNewHostKey: input.acceptNewHostKey ?? false,
    account: input.account,
    naming: bladeNaming(spec, input.jump, input.env.HOME || homedir()),
  }
}

/** ie-virsh's arguments for a plan: the command, its own arguments, then --account if any. */
export function ieVirshArgs(plan: VmPlan, args: string[]): string[] {
  return plan.account === undefined ? args : [...args, '--account', plan.account]
}
