import {join} from 'node:path'

import type {Role} from '../directory/directory.js'
import {archSettings, hostFacts, type ArchSettings, type HostFacts} from '../config/blade-arch.js'
import type {BladeConfig, Limits} from '../config/blade-config.js'
import {defaultPrivilegedDeps, resolvePrivilegedRun, type PrivilegedDeps} from '../privileged/context.js'
import type {Caller} from '../privileged/caller.js'
import {resolveDomainType} from './domain-type.js'
import {LocalImageGate, type ImageGate, type ImageScope} from './image-check.js'
import type {RunAs} from '../process/run.js'
import {limitsFor} from './limits.js'
import {admitToQemuState} from './owner-label.js'
import {PortPool} from '../privileged/ports.js'
import type {Owner} from '../privileged/standing.js'
import {VirshHypervisor, type Hypervisor} from './virsh.js'
import {OwnerNvram, type NvramStore} from './nvram.js'
import {clusterOf} from '../cluster/blades.js'
import {openClusterSlots, type ClusterSlots} from './slot-claims.js'

/** What `main` needs from the outside world; tests replace parts of it. */
export interface VirshDeps extends PrivilegedDeps {
  hypervisor: (config: BladeConfig) => Hypervisor
  imageGate: (scope: ImageScope, config: BladeConfig) => ImageGate
  domainType: (setting: BladeConfig['domainType'], o: {signal: AbortSignal}) => Promise<'kvm' | 'qemu'>
  /** Lets the owner's qemu through libvirt's state folder (owner-label.ts). */
  admitQemu: (dir: string, owner: RunAs, o: {signal: AbortSignal}) => Promise<void>
  /** Whether stdin is a terminal: `console` needs one. */
  isTty: boolean
  /** The host's architecture, /dev/kvm and emulators: the defaults of the config's `arch`. */
  host: () => HostFacts
  /** Makes and checks UEFI variable stores as the owner. */
  nvram: (owner: RunAs) => NvramStore
}

export function defaultDeps(): VirshDeps {
  return {
    ...defaultPrivilegedDeps(),
    hypervisor: (config) => new VirshHypervisor(config.libvirtUri),
    imageGate: (scope) => new LocalImageGate(scope),
    admitQemu: admitToQemuState,
    domainType: (setting, o) => resolveDomainType(setting, o),
    isTty: Boolean(process.stdin.isTTY),
    host: hostFacts,
    nvram: (owner) => new OwnerNvram(owner),
  }
}

/** Everything a command handler works with, resolved once per run. */
export interface VirshContext {
  config: BladeConfig
  /** Who runs ie-virsh. */
  caller: Caller
  role: Role
  /** Whose domains the command acts on: the caller, or the account an admin named. */
  owner: Owner & {gid: number}
  /** The owner's limits, from the owner's groups. */
  limits: Limits
  scope: ImageScope
  lockPath: string
  hypervisor: Hypervisor
  images: ImageGate
  /** The architectures this blade runs natively and emulated (config `arch`, defaults from the host). */
  arch: ArchSettings
  nvram: NvramStore
  ports: PortPool
  templateDirs: {admin: string; package: string}
  /** This blade's lock for starts: the memory of running VMs is counted under it. */
  bladeLockPath: string
  /** Lets the owner's qemu through libvirt's state folder, before a start. */
  admitQemu: () => Promise<void>
  domainType: () => Promise<'kvm' | 'qemu'>
  /** The host students give ssh (and gdb) to reach forwarded ports. */
  sshHost: string
  /** This blade's name, recorded with the debug ports it hands out. */
  hostname: string
  /**
   * The slot records and kept XML for this blade (slot-claims.ts), opened on first use; undefined
   * without a `cluster` section in the config, when this blade is the only one.
   */
  cluster: () => Promise<ClusterSlots | undefined>
  isTty: boolean
  signal: AbortSignal
}

export async function buildContext(deps: VirshDeps, signal: AbortSignal, account?: string): Promise<VirshContext> {
  const run = await resolvePrivilegedRun('ie-virsh', deps, signal, account)
  const {caller, config, root, paths, owner} = run
  const arch = archSettings(config, deps.host())
  const scope: ImageScope = {uid: owner.uid, gid: owner.gid, home: paths.home, imagesDir: paths.images, boxesDir: join(root, 'boxes'), image: paths.image, record: paths.record, nvram: paths.nvram}
  return {
    config,
    caller,
    role: run.role,
    owner,
    limits: limitsFor(run.ownerGroups, config),
    scope,
    lockPath: paths.lock,
    hypervisor: deps.hypervisor(config),
    images: deps.imageGate(scope, config),
    arch,
    nvram: deps.nvram(owner),
    ports: new PortPool(join(root, 'ports', 'ssh'), config.sshPortPool, 'ssh'),
    templateDirs: {admin: config.templatesDir, package: deps.pkg.templatesDir},
    admitQemu: () => deps.admitQemu(config.qemuStateDir, owner, {signal}),
    bladeLockPath: join(config.runDir, 'start.lock'),
    domainType: () => deps.domainType(config.domainType, {signal}),
    sshHost: reachableHost(config.listenAddress, deps.hostname),
    hostname: deps.hostname,
    cluster: clusterSlotsOf(config, root, {hostname: deps.hostname, native: arch.native}),
    isTty: deps.isTty,
    signal,
  }
}

/** Opens the cluster's slot records once, when a command first needs them; never without a cluster section. */
function clusterSlotsOf(config: BladeConfig, root: string, here: Parameters<typeof clusterOf>[1]): () => Promise<ClusterSlots | undefined> {
  if (config.cluster === undefined) return async () => undefined
  let opened: Promise<ClusterSlots> | undefined
  return () => (opened ??= openClusterSlots(root, clusterOf(config, here).self.name))
}

/** The host to print for a port bound to `address`: the blade's name when it listens everywhere. */
export function reachableHost(address: string, blade: string): string {
  return address === '0.0.0.0' || address === '::' ? blade : address
}
