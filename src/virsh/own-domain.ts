import {ShienError} from '../errors.js'
import {domainName} from '../config/storage-layout.js'
import type {VirshContext} from './context.js'
import {parseSlot} from './limits.js'
import {withAccountLock} from '../privileged/lock.js'
import type {DomainState} from './virsh.js'

// Inactive states: only these can be started, and only these may be undefined.
export const INACTIVE: readonly DomainState[] = ['shut off', 'crashed']

/** The caller's command as it would be typed again, with --account when an admin acts for someone. */
export function again(ctx: VirshContext, command: string): string {
  const account = ctx.owner.account === ctx.caller.account ? '' : ` --account ${ctx.owner.account}`
  return `sudo ie-virsh ${command}${account}`
}

/**
 * Resolves the slot to the owner's domain, takes the owner's lock and hands over the domain's
 * current state. The domain name is built from the owner's account, never taken from input,
 * so no slot can reach another account's domain.
 */
export async function onOwnDomain<T>(
  ctx: VirshContext,
  rawSlot: string,
  work: (name: string, slot: string, state: DomainState) => Promise<T>,
): Promise<T> {
  const slot = parseSlot(rawSlot, ctx.limits)
  const name = domainName(ctx.owner.account, slot)
  return withAccountLock(
    ctx.lockPath,
    async () => {
      const state = await ctx.hypervisor.state(name, {signal: ctx.signal})
      if (state === undefined) {
        throw new ShienError(`Slot ${slot} has no domain (${name} is not defined).`, {
          code: 'NOT_DEFINED',
          exit: 'refused',
          suggestions: [`Define it first: ${again(ctx, `define ${slot}`)}`, `See the VMs: ${again(ctx, 'list')}`],
        })
      }
      return work(name, slot, state)
    },
    {signal: ctx.signal},
  )
}
