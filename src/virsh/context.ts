import {realpath} from 'node:fs/promises'
import {hostname} from 'node:os'
import {join} from 'node:path'

import type {Directory, Role} from '../directory/directory.js'
import {openDirectory} from '../directory/open-directory.js'
import {ShienError} from '../errors.js'
import {DEFAULT_CONFIG_PATH, type BladeConfig, type Limits} from '../server/config.js'
import {userPaths} from '../server/layout.js'
import {getentLookup, getentUid, resolveCaller, type AccountLookup, type Caller} from './caller.js'
import {resolveDomainType} from './domain-type.js'
import {LocalImageGate, type ImageGate, type ImageScope} from './image-check.js'
import {limitsFor} from './limits.js'
import {packageInfo, type PackageInfo} from './package-info.js'
import {PortPool} from './ports.js'
import {resolveStanding, type Owner} from './standing.js'
import {loadTrustedConfig} from './trusted-config.js'
import {VirshHypervisor, type Hypervisor} from './virsh.js'

/** What `main` needs from the outside world; tests replace parts of it. */
export interface VirshDeps {
  /** /etc/shien/config.json; a parameter for tests only, never read from argv or env. */
  configPath: string
  /** The process environment; only SUDO_UID is read from it. */
  env: Readonly<Record<string, string | undefined>>
  realUid: number
  lookupAccount: AccountLookup
  /** An account name's uid, for an admin's --account. */
  lookupUid: (account: string) => Promise<number | undefined>
  directory: (config: BladeConfig) => Directory
  hypervisor: (config: BladeConfig) => Hypervisor
  imageGate: (scope: ImageScope, config: BladeConfig) => ImageGate
  domainType: (setting: BladeConfig['domainType'], o: {signal: AbortSignal}) => Promise<'kvm' | 'qemu'>
  pkg: PackageInfo
  hostname: string
  /** Whether stdin is a terminal: `console` needs one. */
  isTty: boolean
  stdout: (text: string) => void
  stderr: (text: string) => void
}

export function defaultDeps(): VirshDeps {
  return {
    configPath: DEFAULT_CONFIG_PATH,
    env: process.env,
    realUid: process.getuid?.() ?? -1,
    lookupAccount: getentLookup,
    lookupUid: getentUid,
    directory: openDirectory,
    hypervisor: (config) => new VirshHypervisor(config.libvirtUri),
    imageGate: (scope, config) => new LocalImageGate(scope, config.qemuUser),
    domainType: (setting, o) => resolveDomainType(setting, o),
    pkg: packageInfo(),
    hostname: hostname(),
    isTty: Boolean(process.stdin.isTTY),
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
  }
}

/** Everything a command handler works with, resolved once per run. */
export interface VirshContext {
  config: BladeConfig
  /** Who runs ie-virsh. */
  caller: Caller
  role: Role
  /** Whose domains the command acts on: the caller, or the account an admin named. */
  owner: Owner
  /** The owner's limits, from the owner's groups. */
  limits: Limits
  scope: ImageScope
  lockPath: string
  hypervisor: Hypervisor
  images: ImageGate
  ports: PortPool
  debugPorts: PortPool
  debugLockPath: string
  templateDirs: {admin: string; package: string}
  domainType: () => Promise<'kvm' | 'qemu'>
  /** The host students give ssh (and gdb) to reach forwarded ports. */
  sshHost: string
  /** This blade's name, recorded with the debug ports it hands out. */
  hostname: string
  isTty: boolean
  signal: AbortSignal
}

export async function buildContext(deps: VirshDeps, signal: AbortSignal, account?: string): Promise<VirshContext> {
  const caller = await resolveCaller(deps.env, deps.realUid, deps.lookupAccount)
  const config = loadTrustedConfig(deps.configPath)
  const standing = await resolveStanding({caller, directory: deps.directory(config), account, lookupUid: deps.lookupUid, signal})
  const root = await realpath(config.storageRoot).catch(() => {
    throw new ShienError(`The storage root ${config.storageRoot} is not there.`, {
      code: 'STORAGE_MISSING',
      exit: 'remote',
      suggestions: ['Ask an admin: the shared storage may not be mounted on this blade.'],
    })
  })
  const {owner} = standing
  const paths = userPaths(root, owner.account)
  const scope: ImageScope = {uid: owner.uid, home: paths.home, imagesDir: paths.images, boxesDir: join(root, 'boxes'), image: paths.image, record: paths.record}
  return {
    config,
    caller,
    role: standing.role,
    owner,
    limits: limitsFor(standing.ownerGroups, config),
    scope,
    lockPath: paths.lock,
    hypervisor: deps.hypervisor(config),
    images: deps.imageGate(scope, config),
    ports: new PortPool(join(root, 'ports', 'ssh'), config.sshPortPool, 'ssh'),
    debugPorts: new PortPool(join(root, 'ports', 'debug'), config.debugPortPool, 'debug', deps.hostname),
    debugLockPath: join(root, 'ports', 'debug', '.lock'),
    templateDirs: {admin: config.templatesDir, package: deps.pkg.templatesDir},
    domainType: () => deps.domainType(config.domainType, {signal}),
    sshHost: reachableHost(config.listenAddress, deps.hostname),
    hostname: deps.hostname,
    isTty: deps.isTty,
    signal,
  }
}

/** The host to print for a port bound to `address`: the blade's name when it listens everywhere. */
export function reachableHost(address: string, blade: string): string {
  return address === '0.0.0.0' || address === '::' ? blade : address
}
