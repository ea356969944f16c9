import {ShienError} from '../../errors.js'
import type {SshTarget} from '../../transport/ssh-target.js'
import {findBlade} from '../find-blade.js'

/** Which blade `shien vm` talks to, and how its host key is checked. */
export interface VmPlan {
  target: SshTarget
  acceptNewHostKey: boolean
  /** An admin acting on another account's VMs. */
  account?: string
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
  const blade = findBlade(input)
  if (!blade) {
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
  }
}

/** ie-virsh's arguments for a plan: the command, its own arguments, then --account if any. */
export function ieVirshArgs(plan: VmPlan, args: string[]): string[] {
  return plan.account === undefined ? args : [...args, '--account', plan.account]
}
