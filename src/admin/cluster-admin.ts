/**
 * What `shien admin migrate`, `drain`, `undrain` and `recover` share (docs/cluster.md): they run
 * as root on any blade of the cluster, read the slot records and kept XML on the shared storage,
 * and reach every blade's libvirtd by its URI: this blade's own `libvirtUri`, the others'
 * `migrationUri` (root's SSH or TLS between blades, as the migrations themselves need).
 */
import {realpath} from 'node:fs/promises'
import {hostname} from 'node:os'

import type {BladeConfig} from '../config/blade-config.js'
import {clusterOf, type Cluster, type ClusterBlade} from '../cluster/blades.js'
import type {BladeFacts} from '../cluster/placement.js'
import {ShienError} from '../errors.js'
import {ACCOUNT_PATTERN, SLOT_PATTERN} from '../names.js'
import {openDomainXmls, type DomainXmls} from '../privileged/domain-xmls.js'
import {openDrainedBlades, type DrainedBlades} from '../privileged/drained-blades.js'
import {openSlotRecords, type SlotRecords} from '../privileged/slot-records.js'
import {loadTrustedConfig} from '../privileged/trusted-config.js'
import {runningMemory} from '../virsh/blade-memory.js'
import {VirshHypervisor} from '../virsh/virsh.js'

export interface ClusterAdminInputs {
  configPath: string
  uid: number
  /** Who runs it (SUDO_USER), for the drain marks. */
  admin: string
  signal: AbortSignal
}

export interface ClusterAdmin {
  config: BladeConfig
  cluster: Cluster
  /** The storage root, links resolved. */
  root: string
  records: SlotRecords
  xmls: DomainXmls
  drained: DrainedBlades
  admin: string
  signal: AbortSignal
  /** A blade's libvirtd as this blade reaches it. */
  libvirt(blade: ClusterBlade): VirshHypervisor
  /** The URI this blade reaches `blade`'s libvirtd by. */
  uriOf(blade: ClusterBlade): string
}

/** Who runs an admin command (the admin's account through sudo) and where the blade's config is. */
export function adminInputs(configPath: string, signal: AbortSignal): ClusterAdminInputs {
  return {configPath, uid: process.getuid?.() ?? -1, admin: process.env.SUDO_USER ?? 'root', signal}
}

/** How long a blade's libvirtd may take to answer the questions placement asks. */
const FACTS_TIMEOUT_MS = 20_000

/** Checks it runs as root on a blade of a cluster, then opens the records, XML and drain marks. */
export async function openClusterAdmin(command: string, input: ClusterAdminInputs): Promise<ClusterAdmin> {
  if (input.uid !== 0) {
    throw new ShienError(`shien admin ${command} moves students' VMs between blades and changes the cluster's records: it must run as root.`, {
      code: 'NOT_ROOT',
      exit: 'refused',
      suggestions: [`On a blade: sudo shien admin ${command} ...`],
    })
  }
  const config = loadTrustedConfig(input.configPath)
  // The native list only names the blade of a config without a cluster section, refused below.
  const cluster = clusterOf(config, {hostname: hostname(), native: []})
  if (!cluster.configured) {
    throw new ShienError(`shien admin ${command} moves VMs between the blades of a cluster, and this blade's configuration (${input.configPath}) has no cluster section.`, {
      code: 'NO_CLUSTER',
      exit: 'refused',
      suggestions: ['List the blades in the cluster section of /etc/shien/config.json on every blade (docs/cluster.md).'],
    })
  }
  const root = await realpath(config.storageRoot).catch(() => {
    throw new ShienError(`The storage root ${config.storageRoot} is not there.`, {code: 'STORAGE_MISSING', exit: 'remote', suggestions: ['Mount the shared storage first.']})
  })
  const xmls = await openDomainXmls(root)
  const uriOf = (blade: ClusterBlade) => (blade.name === cluster.self.name ? config.libvirtUri : blade.migrationUri)
  return {
    config,
    cluster,
    root,
    records: await openSlotRecords(root),
    xmls,
    drained: await openDrainedBlades(root),
    admin: input.admin,
    signal: input.signal,
    uriOf,
    libvirt: (blade) => new VirshHypervisor(uriOf(blade)),
  }
}

/** `ACCOUNT-SLOT` (as `vm list` and libvirt name a VM) taken apart; anything else is a usage error. */
export function parseVmName(vm: string): {account: string; slot: string} {
  const m = /^(.+)-(\d\d)$/.exec(vm)
  if (m === null || !ACCOUNT_PATTERN.test(m[1]) || !SLOT_PATTERN.test(m[2])) {
    throw new ShienError(`"${vm}" is not a VM's name: expected ACCOUNT-SLOT, such as e195701-01.`, {
      code: 'USAGE',
      exit: 'usage',
      suggestions: ['The VMs and their blades: shien vm list --account ACCOUNT, or the records in <storageRoot>/cluster/slots/.'],
    })
  }
  return {account: m[1], slot: m[2]}
}

/**
 * Placement's facts of every blade, asked of their libvirtds at once (drained marks from the
 * shared storage); a blade whose libvirtd does not answer within 20 s is unreachable, not fatal.
 * `skip` blades are reported unreachable without asking (the blade being emptied or recovered).
 */
export async function clusterFacts(ctx: ClusterAdmin, skip: ReadonlyMap<string, string> = new Map()): Promise<Map<string, BladeFacts>> {
  const drained = new Set((await ctx.drained.list()).map((mark) => mark.blade))
  const entries = await Promise.all(ctx.cluster.blades.map(async (blade): Promise<[string, BladeFacts]> => {
    const why = skip.get(blade.name)
    if (why !== undefined) return [blade.name, {reachable: false, why}]
    const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(FACTS_TIMEOUT_MS)])
    try {
      const libvirt = ctx.libvirt(blade)
      const memoryMiB = Math.floor((await libvirt.nodeMemoryKiB({signal})) / 1024)
      const running = await runningMemory(libvirt, {signal})
      return [blade.name, {reachable: true, drained: drained.has(blade.name), memoryMiB, runningMiB: Math.ceil(running.bytes / 1024 ** 2), runningVms: running.count, capMiB: ctx.config.bladeMemoryMiB}]
    } catch (error) {
      if (ctx.signal.aborted) throw error
      return [blade.name, {reachable: false, why: error instanceof Error ? error.message : String(error)}]
    }
  }))
  return new Map(entries)
}

/** Whether a blade's libvirtd answers at all, within a few seconds: what `recover` must not find. */
export async function libvirtAnswers(ctx: ClusterAdmin, blade: ClusterBlade, timeoutMs = 15_000): Promise<{answers: boolean; why?: string}> {
  const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(timeoutMs)])
  try {
    await ctx.libvirt(blade).nodeMemoryKiB({signal})
    return {answers: true}
  } catch (error) {
    if (ctx.signal.aborted) throw error
    return {answers: false, why: error instanceof Error ? error.message : String(error)}
  }
}
