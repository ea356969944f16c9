import {ShienError} from '../errors.js'
import type {VirshContext} from './context.js'
import type {Hypervisor, HypervisorCallOptions} from './virsh.js'
import {withPoolLock} from '../privileged/lock.js'

const UNIT: Record<string, number> = {
  b: 1, bytes: 1, kb: 1000, k: 1024, kib: 1024, mb: 1000 ** 2, m: 1024 ** 2, mib: 1024 ** 2, gb: 1000 ** 3, g: 1024 ** 3, gib: 1024 ** 3,
}

/** Bytes of a domain's `<memory>`, in whichever unit the XML gives it (libvirt's default is KiB). */
export function memoryOf(xml: string): number {
  const m = /<memory(?:\s+unit=['"]([A-Za-z]+)['"])?\s*>\s*(\d+)\s*<\/memory>/.exec(xml)
  if (m === null) return 0
  const unit = UNIT[(m[1] ?? 'KiB').toLowerCase()]
  if (unit === undefined) throw new ShienError(`The domain XML gives memory in an unknown unit "${m[1]}".`, {code: 'TEMPLATE_INVALID'})
  return Number(m[2]) * unit
}

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
