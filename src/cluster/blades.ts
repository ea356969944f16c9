import type {z} from 'zod'

import {configError, ShienError} from '../errors.js'
import type {GuestArch} from '../config/blade-arch.js'
import type {BladeConfig} from '../config/blade-config.js'
import type {clusterBladeSchema} from '../config/blade-schema.js'
import type {ClusterView} from '../protocol/blade-steps.js'

/** One blade as the cluster section lists it, defaults filled in (config/blade-schema.ts). */
export type ClusterBlade = z.output<typeof clusterBladeSchema>

/** The blades sharing the storage, and which of them this one is. */
export interface Cluster {
  /** Every blade, in the config's order. */
  blades: ClusterBlade[]
  /** This blade's own entry. */
  self: ClusterBlade
  /** False when the config has no cluster section: this blade is the only one, as before. */
  configured: boolean
}

/** What the cluster view needs to know about this machine when the config leaves it out. */
export interface HereFacts {
  /** `os.hostname()`: the entry of that name (or of its first label) is this blade, unless `cluster.self` says. */
  hostname: string
  /** The architectures this blade runs natively (`archSettings(...).native`), for the one-blade case. */
  native: GuestArch[]
}

/**
 * The cluster as the config describes it. Without a `cluster` section shien is one blade, named
 * after this machine, exactly as before the section existed: its SSH address is its host name
 * and its libvirt URI the one ie-virsh uses (never used to migrate: there is nowhere to go).
 */
export function clusterOf(config: Pick<BladeConfig, 'cluster' | 'libvirtUri' | 'listenAddress'>, here: HereFacts): Cluster {
  // Host names are case-blind; blade names are lowercase.
  const full = here.hostname.toLowerCase()
  const short = full.split('.')[0]
  if (config.cluster === undefined) {
    const self: ClusterBlade = {name: short, ssh: here.hostname, migrationUri: config.libvirtUri, native: [...here.native], keepFreeMiB: 0}
    return {blades: [self], self, configured: false}
  }
  const {blades} = config.cluster
  const wanted = config.cluster.self
  const self = wanted === undefined
    ? blades.find((b) => b.name === full || b.name === short)
    : blades.find((b) => b.name === wanted)
  if (self === undefined) {
    throw configError('CONFIG_INVALID', `The blade configuration's cluster section does not say which blade this is: cluster.self is not set and no entry of cluster.blades (${names(blades)}) is named "${short}", this machine's host name.`, [
      'Ask an admin to set "self" in the cluster section of /etc/shien/config.json on this blade, or to name its entry after its host name (docs/cluster.md).',
    ])
  }
  return {blades, self, configured: true}
}

/**
 * What the laptop is told of the cluster (`shien blade hello`): names, SSH addresses and what
 * placement reads of each entry (never a migration URI or a listen address); nothing without a
 * cluster section.
 */
export function clusterView(cluster: Cluster): ClusterView | undefined {
  if (!cluster.configured) return undefined
  return {
    self: cluster.self.name,
    blades: cluster.blades.map(({name, ssh, native, keepFreeMiB, maxVms}) => ({name, ssh, native, keepFreeMiB, ...(maxVms === undefined ? {} : {maxVms})})),
  }
}

/** The blade named `name` (as `--blade` or an admin command gives it); an unknown name is a usage error listing the blades. */
export function bladeNamed<B extends Pick<ClusterBlade, 'name'> = ClusterBlade>(cluster: {blades: readonly B[]}, name: string): B {
  const found = cluster.blades.find((b) => b.name === name)
  if (found) return found
  throw new ShienError(`There is no blade "${name}" in the cluster; the blades are ${names(cluster.blades)}.`, {
    code: 'UNKNOWN_BLADE',
    exit: 'usage',
    suggestions: [`Name one of ${names(cluster.blades)}.`],
  })
}

/** A blade's SSH address taken apart; `port` is undefined where the address leaves it to ssh's default or ~/.ssh/config. */
export function sshAddressOf(blade: Pick<ClusterBlade, 'ssh'>): {host: string; port?: number} {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(blade.ssh)
  if (m === null) throw new Error(`Internal error: "${blade.ssh}" is not an SSH address (the schema checks them).`)
  const host = m[1].startsWith('[') ? m[1].slice(1, -1) : m[1]
  return m[2] === undefined ? {host} : {host, port: Number(m[2])}
}

/** The address a blade's SSH forwards listen on: its own where the cluster section gives one, else the config's. */
export function listenAddressOf(blade: Pick<ClusterBlade, 'listenAddress'>, config: Pick<BladeConfig, 'listenAddress'>): string {
  return blade.listenAddress ?? config.listenAddress
}

const names = (blades: ReadonlyArray<Pick<ClusterBlade, 'name'>>) => blades.map((b) => b.name).join(', ')
