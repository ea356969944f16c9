import {setTimeout as sleep} from 'node:timers/promises'

import {ShienError} from '../errors.js'
import type {VirshContext} from './context.js'
import {sshForwardOf} from './domain-xml.js'
import {dropGdbStub} from './gdb-stub.js'
import {INACTIVE, again, onOwnDomain} from './own-domain.js'
import {withinBladeMemory} from './blade-memory.js'
import {runAsOwner} from './run-as-owner.js'
import {claimDefinedHere, releaseAfterUndefine} from './slot-claims.js'
import {sshFields, type SshFields} from './ssh-info.js'
import type {DomainState} from './virsh.js'

export interface StartResult extends Partial<SshFields> {
  name: string
  slot: string
  state: DomainState
  /** True when the domain was already running and nothing was done. */
  alreadyRunning: boolean
}

export interface DestroyResult {
  name: string
  slot: string
  state: DomainState
  /** False when the domain was already off and nothing was done. */
  wasRunning: boolean
}

export interface ShutdownResult {
  name: string
  slot: string
  state: DomainState
  /**
   * `shutdown`: the guest shut itself down after the ACPI request; `destroyed`: it was still
   * running after the timeout and was powered off; `not-running`: it was already off.
   */
  outcome: 'shutdown' | 'destroyed' | 'not-running'
  /** How long the guest was given, and how long it took (until shut off, or the timeout). */
  timeoutSeconds: number
  waitedMs: number
}

export interface UndefineResult {
  name: string
  slot: string
  portsFreed: number[]
  /** Files deleted by --remove-image. */
  removed: string[]
}

/**
 * `ie-virsh start SLOT`. The image is checked again first (the student can replace it at any
 * time after define), for a clear refusal; what protects other students is that the VM runs as
 * its owner, which start makes sure of too (runAsOwner), also for domains defined before.
 */
export function startSlot(ctx: VirshContext, rawSlot: string): Promise<StartResult> {
  const o = {signal: ctx.signal}
  return onOwnDomain(ctx, rawSlot, async (name, slot, before) => {
    // A slot recorded on another blade must not run here too (one image, two qemus).
    await claimDefinedHere(ctx, name, slot)
    const alreadyRunning = !INACTIVE.includes(before)
    if (!alreadyRunning) {
      await ctx.images.check(slot, o)
      await dropGdbStub(ctx, name)
      await runAsOwner(ctx, name)
      await withinBladeMemory(ctx, name, () => ctx.hypervisor.start(name, o))
    }
    const forward = sshForwardOf(await ctx.hypervisor.dumpXml(name, o))
    const state = (await ctx.hypervisor.state(name, o)) ?? 'unknown'
    return {name, slot, state, alreadyRunning, ...sshFields(ctx.sshHost, forward?.port)}
  })
}

/** `ie-virsh destroy SLOT`: powers the VM off at once (the thesis's "stop"). */
export function destroySlot(ctx: VirshContext, rawSlot: string): Promise<DestroyResult> {
  const o = {signal: ctx.signal}
  return onOwnDomain(ctx, rawSlot, async (name, slot, before) => {
    const wasRunning = !INACTIVE.includes(before)
    if (wasRunning) await ctx.hypervisor.destroy(name, o)
    const state = (await ctx.hypervisor.state(name, o)) ?? 'unknown'
    return {name, slot, state, wasRunning}
  })
}

// How often the state is read while a guest shuts down.
const SHUTDOWN_POLL_MS = 500

/**
 * `ie-virsh shutdown SLOT [--timeout SECONDS]`: the ACPI power button, then a wait for the guest
 * to power itself off; still running after the timeout, it is destroyed. Same ownership rules
 * as destroy: the domain is the owner's, by name, under the owner's lock.
 */
export function shutdownSlot(ctx: VirshContext, rawSlot: string, opts: {timeoutSeconds: number}): Promise<ShutdownResult> {
  const o = {signal: ctx.signal}
  return onOwnDomain(ctx, rawSlot, async (name, slot, before) => {
    const base = {name, slot, timeoutSeconds: opts.timeoutSeconds}
    if (INACTIVE.includes(before)) return {...base, state: before, outcome: 'not-running', waitedMs: 0}
    const started = Date.now()
    await ctx.hypervisor.shutdown(name, o)
    const deadline = started + opts.timeoutSeconds * 1000
    let state = await ctx.hypervisor.state(name, o)
    while (state !== undefined && !INACTIVE.includes(state) && Date.now() < deadline) {
      await sleep(Math.min(SHUTDOWN_POLL_MS, deadline - Date.now()), undefined, o)
      state = await ctx.hypervisor.state(name, o)
    }
    const waitedMs = Date.now() - started
    if (state !== undefined && INACTIVE.includes(state)) return {...base, state, outcome: 'shutdown', waitedMs}
    await ctx.hypervisor.destroy(name, o)
    return {...base, state: (await ctx.hypervisor.state(name, o)) ?? 'unknown', outcome: 'destroyed', waitedMs}
  })
}

/** `ie-virsh undefine SLOT [--remove-image]`: removes the domain, returns its SSH port and gives its slot record back. */
export function undefineSlot(ctx: VirshContext, rawSlot: string, opts: {removeImage: boolean}): Promise<UndefineResult> {
  const o = {signal: ctx.signal}
  return onOwnDomain(ctx, rawSlot, async (name, slot, state) => {
    // A running domain keeps using its port and image; freeing them now would hand both out twice.
    if (!INACTIVE.includes(state)) {
      throw new ShienError(`${name} is ${state}; stop it before undefining it.`, {
        code: 'DOMAIN_RUNNING',
        exit: 'refused',
        suggestions: [`Stop it first: ${again(ctx, `destroy ${slot}`)}`],
      })
    }
    await ctx.hypervisor.undefine(name, o)
    const portsFreed = await ctx.ports.release(name)
    await releaseAfterUndefine(ctx, slot)
    const removed = opts.removeImage ? await removeAfterUndefine(ctx, name, slot) : []
    return {name, slot, portsFreed, removed}
  })
}

/** Removes the image of an undefined domain; a refusal says the domain itself is gone. */
async function removeAfterUndefine(ctx: VirshContext, name: string, slot: string): Promise<string[]> {
  try {
    return await ctx.images.removeImage(slot, {signal: ctx.signal})
  } catch (error) {
    if (!(error instanceof ShienError)) throw error
    throw new ShienError(`${name} was undefined, but its image was not removed: ${error.message}`, {
      code: error.code,
      exit: 'refused',
      suggestions: error.suggestions,
      cause: error,
    })
  }
}

export function describeStart(r: StartResult): string {
  const lines = [r.alreadyRunning ? `${r.name} was already ${r.state}.` : `Started ${r.name}.`]
  if (r.ssh) lines.push(`Log in with: ${r.ssh}`, '(a fresh guest needs about half a minute before sshd answers)')
  return lines.join('\n')
}

export function describeDestroy(r: DestroyResult): string {
  return r.wasRunning ? `Stopped ${r.name} (powered off).` : `${r.name} was not running.`
}

export function describeShutdown(r: ShutdownResult): string {
  if (r.outcome === 'not-running') return `${r.name} was not running.`
  const seconds = (r.waitedMs / 1000).toFixed(1)
  if (r.outcome === 'shutdown') return `Shut ${r.name} down (it powered off after ${seconds} s).`
  return `${r.name} did not shut down within ${r.timeoutSeconds} s, so it was powered off (destroyed).`
}

export function describeUndefine(r: UndefineResult): string {
  const lines = [`Undefined ${r.name}.`]
  if (r.portsFreed.length > 0) lines.push(`SSH port ${r.portsFreed.join(', ')} returned to the pool.`)
  for (const path of r.removed) lines.push(`Removed ${path}`)
  return lines.join('\n')
}
