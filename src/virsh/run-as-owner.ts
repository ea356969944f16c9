import type {VirshContext} from './context.js'
import {hasOwnerLabel, withOwnerLabel} from './owner-label.js'

/**
 * Makes sure the domain `name` runs as its owner before it starts: the definition must carry
 * the owner's static label (a domain defined before ie-virsh set one, or changed by hand, is
 * defined again with it), and the owner's qemu must be able to reach libvirt's state folder.
 */
export async function runAsOwner(ctx: VirshContext, name: string): Promise<void> {
  const o = {signal: ctx.signal}
  // With secrets: the definition written back must keep e.g. a console password of the template.
  const xml = await ctx.hypervisor.dumpXml(name, {...o, inactive: true, withSecrets: true})
  if (!hasOwnerLabel(xml, ctx.owner)) await ctx.hypervisor.define(withOwnerLabel(xml, ctx.owner), o)
  await ctx.admitQemu()
}
