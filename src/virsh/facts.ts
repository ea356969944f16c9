import {realpath} from 'node:fs/promises'

import {ShienError} from '../errors.js'
import {archSettings, type GuestArch} from '../config/blade-arch.js'
import {clusterOf} from '../cluster/blades.js'
import {resolveCaller} from '../privileged/caller.js'
import {openDrainedBlades} from '../privileged/drained-blades.js'
import {loadTrustedConfig} from '../privileged/trusted-config.js'
import {runningMemory} from './blade-memory.js'
import type {VirshDeps} from './context.js'

/**
 * `ie-virsh facts`: what placement (src/cluster/placement.ts) needs to know about this blade,
 * for the laptop that asks every blade before a push. Read-only, and any caller may ask: it gives
 * counts and sums over every running domain (the blade's load), never a domain's name or owner.
 */
export interface BladeFactsResult {
  /** This blade's name: `cluster.self` (or its entry by host name), else the host name's first label. */
  blade: string
  /** libvirt's memory of the host (`virsh nodeinfo`), in MiB. */
  memoryMiB: number
  /** What the running domains have together (their `<memory>`), in MiB, rounded up. */
  runningMiB: number
  runningVms: number
  /** This blade's bound on its running VMs' memory (config bladeMemoryMiB). */
  bladeMemoryMiB: number
  /** The architectures it runs under KVM, and those it runs emulated (config `arch`, host defaults). */
  native: GuestArch[]
  emulated: GuestArch[]
  /** Drained by an admin: placement gives it no new VMs. Never without a cluster section. */
  drained: boolean
}

export async function bladeFacts(deps: VirshDeps, signal: AbortSignal): Promise<BladeFactsResult> {
  // Only that it runs as root through sudo: the answer is the blade's, not the caller's.
  await resolveCaller(deps.env, deps.realUid, deps.lookupAccount, 'ie-virsh')
  const config = loadTrustedConfig(deps.configPath)
  const arch = archSettings(config, deps.host())
  const self = clusterOf(config, {hostname: deps.hostname, native: arch.native}).self.name
  const hypervisor = deps.hypervisor(config)
  const o = {signal}
  const memoryMiB = Math.floor((await hypervisor.nodeMemoryKiB(o)) / 1024)
  const running = await runningMemory(hypervisor, o)
  return {
    blade: self,
    memoryMiB,
    runningMiB: Math.ceil(running.bytes / 1024 ** 2),
    runningVms: running.count,
    bladeMemoryMiB: config.bladeMemoryMiB,
    native: [...arch.native],
    emulated: [...arch.emulated],
    drained: config.cluster === undefined ? false : await isDrained(config.storageRoot, self),
  }
}

/** Whether an admin drained `blade`: its mark in the cluster folder of the (resolved) storage root. */
async function isDrained(storageRoot: string, blade: string): Promise<boolean> {
  const root = await realpath(storageRoot).catch(() => {
    throw new ShienError(`The storage root ${storageRoot} is not there.`, {
      code: 'STORAGE_MISSING',
      exit: 'remote',
      suggestions: ['Ask an admin: the shared storage may not be mounted on this blade.'],
    })
  })
  return (await (await openDrainedBlades(root)).list()).some((mark) => mark.blade === blade)
}

export function describeFacts(r: BladeFactsResult): string {
  return [
    `${r.blade}${r.drained ? ' (drained)' : ''}: ${r.memoryMiB} MiB, ${r.runningVms} VM${r.runningVms === 1 ? '' : 's'} running with ${r.runningMiB} MiB (VMs may have ${r.bladeMemoryMiB} MiB together).`,
    `Runs natively: ${r.native.join(', ') || 'none'}; emulated: ${r.emulated.join(', ') || 'none'}.`,
  ].join('\n')
}
