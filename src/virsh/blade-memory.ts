import {ShienError} from '../errors.js'
import type {VirshContext} from './context.js'
import type {Hypervisor, HypervisorCallOptions} from './virsh.js'
import {withPoolLock} from '../privileged/lock.js'
import {memoryOf} from '../cluster/vm-shape.js'

/**
 * Starts `name` through `start` only if the memory of every running domain on this blade,
 * plus its own, stays within `bladeMemoryMiB`; one start at a time on the blade, so two
 * students cannot both take the last of it. Every running domain counts, shien's or not.
 */
export async function withinBladeMemory<T>(ctx: VirshContext, name: string, start: () => Promise<T>): Promise<T> {
  const o = {signal: ctx.signal}
  return withPoolLock(ctx.bladeLockPath, async () => {
    const wanted = memoryOf(await ctx.hypervisor.dumpXml(name, {...o, inactive: true}))
    const {bytes: used} = await runningMemory(ctx.hypervisor, o, name)
    const limit = ctx.config.bladeMemoryMiB * 1024 ** 2
    if (used + wanted > limit) {
      const mib = (bytes: number) => Math.ceil(bytes / 1024 ** 2)
      throw new ShienError(
        `${name} needs ${mib(wanted)} MiB, but running VMs on ${ctx.hostname} already use ${mib(used)} of the ${ctx.config.bladeMemoryMiB} MiB they may have.`,
        {code: 'BLADE_FULL', exit: 'refused', suggestions: ['Stop a VM you do not need (sudo ie-virsh destroy SLOT), or try again later.']},
      )
    }
    return start()
  }, o)
}

/**
 * What the domains running on this blade have together (their `<memory>`, in bytes) and how
 * many they are, `except` left out. A domain that stopped since the listing counts for nothing.
 */
export async function runningMemory(hypervisor: Pick<Hypervisor, 'listActive' | 'dumpXml' | 'state'>, o: HypervisorCallOptions, except?: string): Promise<{bytes: number; count: number}> {
  let bytes = 0
  let count = 0
  for (const name of await hypervisor.listActive(o)) {
    if (name === except) continue
    const xml = await hypervisor.dumpXml(name, o).catch(async (error: unknown) => {
      if ((await hypervisor.state(name, o)) === undefined) return undefined
      throw error
    })
    if (xml === undefined) continue
    bytes += memoryOf(xml)
    count++
  }
  return {bytes, count}
}
