import {randomUUID} from 'node:crypto'

import {ShienError} from '../errors.js'
import {domainName} from '../config/storage-layout.js'
import type {VirshContext} from './context.js'
import {parseSlot} from './limits.js'
import {withAccountLock} from '../privileged/lock.js'
import {again} from './own-domain.js'
import {sshFields, type SshFields} from './ssh-info.js'
import {archMode, type GuestArch} from '../config/blade-arch.js'
import {loaderOf, varsTemplateFor} from './firmware.js'
import type {ImagePlatform} from './image-platform.js'
import {loadTemplate, renderDomainXml, templateVariant, usesNvram, usesSshPort} from './template.js'
import {claimDefinedHere, claimForDefine} from './slot-claims.js'

/** The SSH fields are absent for templates without an SSH forward. */
export interface DefineResult extends Partial<SshFields> {
  name: string
  slot: string
  state: 'shut off'
  domainType: 'kvm' | 'qemu'
  /** The guest's architecture and firmware, from the image's record; `emulated` when it runs under TCG. */
  arch: GuestArch
  firmware: 'bios' | 'efi'
  emulated: boolean
  /** The VM's own UEFI variable store, for a UEFI domain. */
  nvram?: string
  template: string
  image: {path: string; virtualSize: number; backingChain: string[]}
}

/**
 * `ie-virsh define SLOT`: checks the caller's image for the slot, renders the admin's
 * template around it and defines the domain `<account>-<slot>`, under the account's lock.
 */
export async function defineSlot(ctx: VirshContext, rawSlot: string, opts: {template?: string} = {}): Promise<DefineResult> {
  const slot = parseSlot(rawSlot, ctx.limits)
  const name = domainName(ctx.owner.account, slot)
  const templateName = allowedTemplate(ctx, opts.template ?? ctx.config.defaultTemplate)
  const o = {signal: ctx.signal}
  return withAccountLock(
    ctx.lockPath,
    async () => {
      if ((await ctx.hypervisor.state(name, o)) !== undefined) {
        await claimDefinedHere(ctx, name, slot)
        throw slotDefined(name, slot)
      }
      // Another blade holding the slot is the first refusal; any later one gives the claim back.
      const claim = await claimForDefine(ctx, slot)
      try {
        return await defineClaimed(ctx, name, slot, templateName, claim.keep)
      } catch (error) {
        // The define's own error is the answer; a claim that cannot be given back is told beside it.
        await claim.undo().catch((undoError: unknown) => noteClaimKept(error, undoError, slot))
        throw error
      }
    },
    o,
  )
}

/** The define itself, the slot claimed: `keep` puts the XML beside the slot's record before libvirt is given it. */
async function defineClaimed(ctx: VirshContext, name: string, slot: string, templateName: string, keep: (xml: string) => Promise<void>): Promise<DefineResult> {
  const o = {signal: ctx.signal}
  const image = await ctx.images.check(slot, o)
  const platform = await ctx.images.platform(slot, o)
  const domainType = await domainTypeFor(ctx, platform)
  const template = await loadTemplate(templateName, ctx.templateDirs, templateVariant(platform))
  const nvramPath = usesNvram(template) ? ctx.scope.nvram(slot) : undefined
  const port = usesSshPort(template) ? await ctx.ports.allocate(name) : undefined
  try {
    const xml = renderDomainXml(template, {
      name,
      uuid: randomUUID(),
      domainType,
      memoryMiB: ctx.limits.memoryMiB,
      vcpus: ctx.limits.vcpus,
      diskPath: image.path,
      backingChain: image.backingChain,
      sshPort: port,
      listenAddress: ctx.config.listenAddress,
      owner: ctx.owner,
      arch: platform.arch,
      nvramPath,
    })
    // A fresh store for a fresh definition: the old one's boot entries name the old disk.
    if (nvramPath) await ctx.nvram.reset(nvramPath, await varsTemplateFor(loaderOf(xml) ?? ''), o)
    await keep(xml)
    await ctx.hypervisor.define(xml, o)
  } catch (error) {
    // The domain does not exist, so nothing may keep its port.
    if (port !== undefined) await ctx.ports.release(name)
    throw error
  }
  const {path, virtualSize, backingChain} = image
  return {
    name,
    slot,
    state: 'shut off',
    domainType,
    arch: platform.arch,
    firmware: platform.firmware,
    emulated: domainType === 'qemu',
    ...(nvramPath ? {nvram: nvramPath} : {}),
    template: template.path,
    image: {path, virtualSize, backingChain},
    ...sshFields(ctx.sshHost, port),
  }
}

/**
 * The domain type for the image's architecture, checked here as root whatever the laptop said:
 * KVM (or TCG, where the config or the probe says KVM does not work) for a native architecture,
 * TCG for an emulated one; any other is refused before anything is written.
 */
async function domainTypeFor(ctx: VirshContext, platform: ImagePlatform): Promise<'kvm' | 'qemu'> {
  const mode = archMode(ctx.arch, platform.arch)
  if (mode === 'native') return ctx.domainType()
  if (mode === 'emulated') return 'qemu'
  throw bladeArchUnsupported(ctx, platform.arch)
}

export function bladeArchUnsupported(ctx: Pick<VirshContext, 'arch' | 'hostname'>, arch: GuestArch): ShienError {
  const runs = [...ctx.arch.native, ...ctx.arch.emulated]
  return new ShienError(`The VM is ${arch}, and ${ctx.hostname} runs ${runs.length > 0 ? runs.join(' and ') : 'no'} VMs (its blade configuration's "arch").`, {
    code: 'BLADE_ARCH_UNSUPPORTED',
    exit: 'refused',
    suggestions: [`Push to a blade that runs ${arch} VMs, or ask an admin to add ${arch} to "arch.emulated" in /etc/shien/config.json.`],
  })
}

/** The template, if the owner's groups allow it; anything else (a typo, `../x`) is refused. */
function allowedTemplate(ctx: VirshContext, name: string): string {
  if (ctx.limits.templates.includes(name)) return name
  throw new ShienError(`The template "${name}" is not one ${ctx.owner.account} may use.`, {
    code: 'TEMPLATE_NOT_ALLOWED',
    exit: 'refused',
    suggestions: [`See the templates you may use: ${again(ctx, 'templates')}`],
  })
}

/**
 * Adds to a failed define's error that the slot's claim could not be given back (its record may
 * still name this blade), keeping the define's code, message and exit code.
 */
function noteClaimKept(error: unknown, undoError: unknown, slot: string): void {
  const message = (undoError instanceof Error ? undoError.message : String(undoError)).replace(/\.+$/, '')
  const why = undoError instanceof ShienError ? `${undoError.code}: ${message}` : message
  const note = `Slot ${slot}'s record could not be given back (${why}), so it may still name this blade: ask an admin to check it (docs/cluster.md) before defining the slot on another blade.`
  // A new array: an error's suggestions may be a list other errors share.
  if (error instanceof ShienError) Object.assign(error, {suggestions: [...error.suggestions, note]})
  else if (error instanceof Error) error.message = `${error.message}. ${note}`
}

function slotDefined(name: string, slot: string): ShienError {
  return new ShienError(`Slot ${slot} already holds the domain ${name}.`, {
    code: 'SLOT_DEFINED',
    exit: 'refused',
    suggestions: [`Undefine it first (sudo ie-virsh undefine ${slot}), or push with --replace.`],
  })
}

export function describeDefine(r: DefineResult): string {
  const gib = (r.image.virtualSize / 2 ** 30).toFixed(1)
  const how = r.emulated ? `${r.arch}, emulated (TCG)` : `${r.arch}, ${r.domainType}`
  const lines = [`Defined ${r.name} from ${r.image.path} (${gib} GiB, ${how}${r.firmware === 'efi' ? ', UEFI' : ''}).`]
  if (r.ssh) lines.push(`Once started, log in with: ${r.ssh}`)
  lines.push(`Start it with: sudo ie-virsh start ${r.slot}`)
  return lines.join('\n')
}
