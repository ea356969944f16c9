import {ShienError} from '../errors.js'
import {reachableHost, type VirshContext} from './context.js'
import {dropGdbStub, withGdbStub} from './gdb-stub.js'
import type {CheckedImage} from './image-check.js'
import {withPoolLock} from './lock.js'
import {INACTIVE, again, onOwnDomain} from './own-domain.js'
import type {DomainState} from './virsh.js'

export interface DebugResult {
  name: string
  slot: string
  state: DomainState
  /** The blade port of the VM's gdb stub; it returns to the pool when the VM stops. */
  debugPort: number
  /** Where the stub listens (config debugListenAddress). */
  debugHost: string
  /** True with --stop: the CPUs wait at the reset vector until gdb continues them. */
  stopped: boolean
  /** The command that attaches gdb, on the blade or through an ssh -L tunnel to it. */
  gdb: string
}

/**
 * `ie-virsh debug SLOT [--stop]` (thesis 4.8): takes a port from the debug pool, redefines the
 * domain with a gdb stub on it and boots it. Taking the port, writing it into the domain and
 * starting the VM happen under the pool's lock, so a reclaim run by another ie-virsh (on any
 * blade) cannot see the port as held by a VM that is not running yet and give it away.
 */
export async function debugSlot(ctx: VirshContext, rawSlot: string, opts: {stop: boolean}): Promise<DebugResult> {
  if (!ctx.limits.debug) {
    throw new ShienError(`Kernel debugging is not enabled for ${ctx.owner.account}.`, {
      code: 'DEBUG_NOT_ALLOWED',
      exit: 'refused',
      suggestions: ['Ask your instructor or an admin: debugging is granted per group (limits.groups.*.debug).'],
    })
  }
  const o = {signal: ctx.signal}
  return onOwnDomain(ctx, rawSlot, async (name, slot, before) => {
    if (!INACTIVE.includes(before)) {
      throw new ShienError(`${name} is ${before}; debug boots it itself, with the gdb stub.`, {
        code: 'DOMAIN_RUNNING',
        exit: 'refused',
        suggestions: [`Stop it first: ${again(ctx, `destroy ${slot}`)}`],
      })
    }
    const image = await ctx.images.check(slot, o)
    const debugPort = await withPoolLock(ctx.debugLockPath, async () => {
      await reclaimUnderLock(ctx)
      const port = await ctx.debugPorts.allocate(name)
      try {
        await bootWithStub(ctx, name, image, port, opts.stop)
      } catch (error) {
        await ctx.debugPorts.release(name)
        throw error
      }
      return port
    }, o)
    const debugHost = reachableHost(ctx.config.debugListenAddress, ctx.hostname)
    const state = (await ctx.hypervisor.state(name, o)) ?? 'unknown'
    const target = debugHost.includes(':') ? `[${debugHost}]` : debugHost
    return {name, slot, state, debugPort, debugHost, stopped: opts.stop, gdb: `gdb -ex 'target remote ${target}:${debugPort}'`}
  })
}

async function bootWithStub(ctx: VirshContext, name: string, image: CheckedImage, port: number, paused: boolean): Promise<void> {
  const o = {signal: ctx.signal}
  // With secrets: the definition written back must keep e.g. a console password of the template.
  const xml = await ctx.hypervisor.dumpXml(name, {...o, inactive: true, withSecrets: true})
  await ctx.hypervisor.define(withGdbStub(xml, {address: ctx.config.debugListenAddress, port}), o)
  await ctx.images.grantQemuAccess(image, o)
  // libvirt always launches qemu with -S and resumes the CPUs afterwards unless asked to
  // start paused, so --stop is `start --paused` rather than a -S in the domain XML.
  try {
    await ctx.hypervisor.start(name, {...o, paused})
  } catch (error) {
    await dropGdbStub(ctx, name)
    throw error
  }
  await ctx.images.verifyOwner(image).catch(async (error: unknown) => {
    await ctx.hypervisor.destroy(name, o)
    throw error
  })
}

async function reclaimUnderLock(ctx: VirshContext): Promise<number[]> {
  const active = new Set(await ctx.hypervisor.listActive({signal: ctx.signal}))
  return ctx.debugPorts.reclaim((domain) => active.has(domain))
}

/**
 * Returns the debug ports of this blade's domains that no longer run. Run on every ie-virsh
 * call: a debug VM can stop without ie-virsh (the guest powers off, an admin destroys it),
 * and nothing else would notice.
 */
export function reclaimDebugPorts(ctx: VirshContext): Promise<number[]> {
  return withPoolLock(ctx.debugLockPath, () => reclaimUnderLock(ctx), {signal: ctx.signal})
}

/** Returns the debug port `name` holds, if any (after destroy or undefine). */
export async function releaseDebugPort(ctx: VirshContext, name: string): Promise<number | undefined> {
  const freed = await withPoolLock(ctx.debugLockPath, () => ctx.debugPorts.release(name), {signal: ctx.signal})
  return freed[0]
}

export function describeDebug(r: DebugResult): string {
  const lines = [
    `${r.name} is ${r.state} with a gdb stub on ${r.debugHost}:${r.debugPort}${r.stopped ? ', halted at the first instruction' : ''}.`,
    `Attach gdb on the blade with: ${r.gdb}`,
  ]
  if (r.debugHost === '127.0.0.1' || r.debugHost === '::1') {
    lines.push(`From your laptop: ssh -N -L ${r.debugPort}:${r.debugHost}:${r.debugPort} BLADE, then gdb -ex 'target remote localhost:${r.debugPort}'`)
  }
  lines.push('The port returns to the pool when the VM stops.')
  return lines.join('\n')
}
