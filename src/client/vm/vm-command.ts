import {Args, Flags} from '@oclif/core'

import {ShienCommand} from '../../ui/base-command.js'
import {bladeAccess, jumpFlag} from '../../ui/host-key-prompt.js'
import {loadProjectConfig} from '../project-config.js'
import {ieVirshArgs, planVm, type VmPlan} from './plan.js'
import {callIeVirsh, type VmDeps} from './session.js'
import {onSlotBlade} from './slot-blade.js'

/** Flags every `shien vm` command takes. */
export const vmFlags = {
  host: Flags.string({char: 'H', description: 'Blade: a Host from ~/.ssh/config, HOST, USER@HOST or HOST:PORT (default: .shien.json or SHIEN_HOST).'}),
  jump: jumpFlag,
  'accept-new-host-key': Flags.boolean({description: 'Trust an unknown blade host key without asking (a changed key is still refused).'}),
  account: Flags.string({description: "Admins only: act on this account's VMs."}),
}

/** The slot a command acts on when none is given: `.shien.json`'s (or the user config's), else 01. */
export function defaultSlot(cwd = process.cwd(), env = process.env): string {
  return loadProjectConfig(cwd, env).slot ?? '01'
}

export const slotArg = {
  slot: Args.string({required: true, description: 'VM slot: 01 up to your limit (04 by default).'}),
}

/**
 * The base of the `shien vm` commands: each runs one `sudo -n ie-virsh ...` on the blade over
 * the SSH connection code of `shien push`, so the blade, not the laptop, decides what is allowed.
 */
export abstract class VmCommand extends ShienCommand {
  protected plan(flags: {host?: string; jump?: string; 'accept-new-host-key'?: boolean; account?: string}): VmPlan {
    return planVm({host: flags.host, jump: flags.jump, acceptNewHostKey: flags['accept-new-host-key'], account: flags.account, cwd: process.cwd(), env: process.env})
  }

  protected vmDeps(plan: VmPlan): VmDeps {
    return {signal: this.abort.signal, ...bladeAccess(plan.acceptNewHostKey)}
  }

  protected ieVirsh<T>(plan: VmPlan, args: string[]): Promise<T> {
    return callIeVirsh<T>(plan, args, this.vmDeps(plan))
  }

  /**
   * `ie-virsh ARGS` for a slot, on the blade the slot is on: the one named, or on a cluster the
   * one its record names when the named blade does not have it (slot-blade.ts). Returns the plan
   * of the blade that answered, for what the result says about reaching the VM.
   */
  protected async ieVirshOnSlot<T>(plan: VmPlan, slot: string, args: string[]): Promise<{result: T; plan: VmPlan}> {
    const deps = this.vmDeps(plan)
    return onSlotBlade(plan, slot, deps, async (on, blade) => ({result: await blade.virsh<T>(ieVirshArgs(on, args), {signal: deps.signal}), plan: on}))
  }
}
