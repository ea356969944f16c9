import {dirname} from 'node:path'

import {archMode, isGuestArch} from '../config/blade-arch.js'
import type {VirshContext} from './context.js'
import {bladeArchUnsupported} from './define.js'
import {loaderOf, nvramOf, varsTemplateFor} from './firmware.js'
import {hasOwnerLabel, withOwnerLabel} from './owner-label.js'

/**
 * Makes sure the domain `name` runs as its owner before it starts: the definition must carry
 * the owner's static label (a domain defined before ie-virsh set one, or changed by hand, is
 * defined again with it), and the owner's qemu must be able to reach libvirt's state folder.
 * A UEFI domain's variable store must be the owner's own plain file (made again, as the owner,
 * when it is missing), so libvirt, which would otherwise create it as root, finds it there.
 * A VM of an architecture the blade no longer runs (its `arch` changed since define) does not start.
 */
export async function runAsOwner(ctx: VirshContext, name: string): Promise<void> {
  const o = {signal: ctx.signal}
  // With secrets: the definition written back must keep e.g. a console password of the template.
  const xml = await ctx.hypervisor.dumpXml(name, {...o, inactive: true, withSecrets: true})
  const arch = /<type\b[^>]*\barch=['"]([^'"]+)['"]/.exec(xml)?.[1]
  if (isGuestArch(arch) && archMode(ctx.arch, arch) === undefined) throw bladeArchUnsupported(ctx, arch)
  if (!hasOwnerLabel(xml, ctx.owner)) await ctx.hypervisor.define(withOwnerLabel(xml, ctx.owner), o)
  const nvram = nvramOf(xml)
  if (nvram !== undefined && dirname(nvram) === ctx.scope.imagesDir) await ctx.nvram.ensure(nvram, await varsTemplateFor(loaderOf(xml) ?? ''), o)
  await ctx.admitQemu()
}
