import {lstatSync} from 'node:fs'
import {realpath} from 'node:fs/promises'
import {isIP} from 'node:net'
import {hostname} from 'node:os'
import {isAbsolute, join} from 'node:path'

import {ShienError} from '../errors.js'
import {DEFAULT_CONFIG_PATH, loadBladeConfig, type BladeConfig, type Limits} from '../server/config.js'
import {ACCOUNT_PATTERN, userPaths} from '../server/layout.js'
import {getentLookup, resolveCaller, type AccountLookup, type Caller} from './caller.js'
import {resolveDomainType} from './domain-type.js'
import {LocalImageGate, type ImageGate, type ImageScope} from './image-check.js'
import {limitsFor} from './limits.js'
import {packageInfo, type PackageInfo} from './package-info.js'
import {SshPortPool} from './ports.js'
import {VirshHypervisor, type Hypervisor} from './virsh.js'

/** What `main` needs from the outside world; tests replace parts of it. */
export interface VirshDeps {
  /** /etc/shien/config.json; a parameter for tests only, never read from argv or env. */
  configPath: string
  /** The process environment; only SUDO_UID is read from it. */
  env: Readonly<Record<string, string | undefined>>
  realUid: number
  lookupAccount: AccountLookup
  hypervisor: (config: BladeConfig) => Hypervisor
  imageGate: (scope: ImageScope, config: BladeConfig) => ImageGate
  domainType: (setting: BladeConfig['domainType'], o: {signal: AbortSignal}) => Promise<'kvm' | 'qemu'>
  pkg: PackageInfo
  hostname: string
  stdout: (text: string) => void
  stderr: (text: string) => void
}

export function defaultDeps(): VirshDeps {
  return {
    configPath: DEFAULT_CONFIG_PATH,
    env: process.env,
    realUid: process.getuid?.() ?? -1,
    lookupAccount: getentLookup,
    hypervisor: (config) => new VirshHypervisor(config.libvirtUri),
    imageGate: (scope, config) => new LocalImageGate(scope, config.qemuUser),
    domainType: (setting, o) => resolveDomainType(setting, o),
    pkg: packageInfo(),
    hostname: hostname(),
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
  }
}

/** Everything a command handler works with, resolved once per run. */
export interface VirshContext {
  config: BladeConfig
  caller: Caller
  limits: Limits
  scope: ImageScope
  lockPath: string
  hypervisor: Hypervisor
  images: ImageGate
  ports: SshPortPool
  templateDirs: {admin: string; package: string}
  domainType: () => Promise<'kvm' | 'qemu'>
  /** The host students give ssh to reach forwarded ports. */
  sshHost: string
  signal: AbortSignal
}

export async function buildContext(deps: VirshDeps, signal: AbortSignal): Promise<VirshContext> {
  const caller = await resolveCaller(deps.env, deps.realUid, deps.lookupAccount)
  const config = loadTrustedConfig(deps.configPath)
  const root = await realpath(config.storageRoot).catch(() => {
    throw new ShienError(`The storage root ${config.storageRoot} is not there.`, {
      code: 'STORAGE_MISSING',
      exit: 'remote',
      suggestions: ['Ask an admin: the shared storage may not be mounted on this blade.'],
    })
  })
  const paths = userPaths(root, caller.account)
  const scope: ImageScope = {uid: caller.uid, home: paths.home, imagesDir: paths.images, boxesDir: join(root, 'boxes'), image: paths.image, record: paths.record}
  const wildcard = config.listenAddress === '0.0.0.0' || config.listenAddress === '::'
  return {
    config,
    caller,
    limits: limitsFor(caller.account, config),
    scope,
    lockPath: paths.lock,
    hypervisor: deps.hypervisor(config),
    images: deps.imageGate(scope, config),
    ports: new SshPortPool(join(root, 'ports', 'ssh'), config.sshPortPool),
    templateDirs: {admin: config.templatesDir, package: deps.pkg.templatesDir},
    domainType: () => deps.domainType(config.domainType, {signal}),
    sshHost: wildcard ? deps.hostname : config.listenAddress,
    signal,
  }
}

/**
 * Loads the blade configuration and refuses one a non-root user could have written: it
 * decides which files ie-virsh, as root, touches. Values that end up in setfacl or qemu
 * arguments are checked too, since a comma or colon there would add options.
 */
export function loadTrustedConfig(path: string): BladeConfig {
  const info = (() => {
    try {
      return lstatSync(path)
    } catch {
      return undefined
    }
  })()
  if (info && (!info.isFile() || info.uid !== 0 || (info.mode & 0o022) !== 0)) {
    throw configInvalid(`${path} must be a file owned by root and writable only by root.`)
  }
  const config = loadBladeConfig(path)
  if (!isAbsolute(config.storageRoot)) throw configInvalid(`storageRoot "${config.storageRoot}" is not an absolute path.`)
  if (isIP(config.listenAddress) === 0) throw configInvalid(`listenAddress "${config.listenAddress}" is not an IP address.`)
  if (!ACCOUNT_PATTERN.test(config.qemuUser)) throw configInvalid(`qemuUser "${config.qemuUser}" is not a user name.`)
  if (!['kvm', 'qemu', 'auto'].includes(config.domainType)) throw configInvalid(`domainType "${config.domainType}" is not kvm, qemu or auto.`)
  const {vms, vcpus, memoryMiB} = config.limits.default
  if (![vms, vcpus, memoryMiB].every((n) => Number.isInteger(n) && n > 0) || vms > 99) {
    throw configInvalid('limits.default needs positive whole numbers (vms at most 99).')
  }
  return config
}

function configInvalid(message: string): ShienError {
  return new ShienError(`The blade configuration is invalid: ${message}`, {
    code: 'CONFIG_INVALID',
    suggestions: ['Ask an admin to fix /etc/shien/config.json.'],
  })
}
