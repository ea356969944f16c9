import {realpath} from 'node:fs/promises'
import {hostname} from 'node:os'
import {join} from 'node:path'

import type {Directory, Role} from '../directory/directory.js'
import {openDirectory} from '../directory/open-directory.js'
import {ShienError} from '../errors.js'
import {DEFAULT_CONFIG_PATH, type BladeConfig, type ContainerLimits, type DockerSettings} from '../server/config.js'
import {userPaths} from '../server/layout.js'
import {getentLookup, getentUid, resolveCaller, type AccountLookup} from '../virsh/caller.js'
import {firstErrorLine, runTool} from '../virsh/exec.js'
import {packageInfo, type PackageInfo} from '../virsh/package-info.js'
import {PortPool} from '../virsh/ports.js'
import {resolveStanding, type Owner} from '../virsh/standing.js'
import {loadTrustedConfig} from '../virsh/trusted-config.js'
import {CliEngine, type ContainerEngine} from './engine.js'
import {containerLimitsFor, dockerSettings} from './settings.js'

/** What ie-docker's `main` needs from the outside world; tests replace parts of it. */
export interface DockerDeps {
  /** /etc/shien/config.json; a parameter for tests only, never read from argv or env. */
  configPath: string
  /** The process environment; only SUDO_UID is read from it. */
  env: Readonly<Record<string, string | undefined>>
  realUid: number
  lookupAccount: AccountLookup
  lookupUid: (account: string) => Promise<number | undefined>
  /** The primary gid of a uid: containers with volumes run as uid:gid. */
  lookupGid: (uid: number) => Promise<number>
  directory: (config: BladeConfig) => Directory
  engine: (settings: DockerSettings) => ContainerEngine
  pkg: PackageInfo
  hostname: string
  stdout: (text: string) => void
  stderr: (text: string) => void
}

export function defaultDockerDeps(): DockerDeps {
  return {
    configPath: DEFAULT_CONFIG_PATH,
    env: process.env,
    realUid: process.getuid?.() ?? -1,
    lookupAccount: getentLookup,
    lookupUid: getentUid,
    lookupGid: getentGid,
    directory: openDirectory,
    engine: (s) => new CliEngine(s),
    pkg: packageInfo(),
    hostname: hostname(),
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
  }
}

/** Everything a command works with, resolved once per run. */
export interface DockerContext {
  settings: DockerSettings
  role: Role
  /** Whose containers the command acts on: the caller, or the account an admin named. */
  owner: Owner & {gid: number}
  limits: ContainerLimits
  /** The owner's storage folder: volumes must stay inside it. */
  home: string
  lockPath: string
  engine: ContainerEngine
  ports: PortPool
  poolLockPath: string
  hostname: string
  signal: AbortSignal
}

export async function buildDockerContext(deps: DockerDeps, signal: AbortSignal, account?: string): Promise<DockerContext> {
  const caller = await resolveCaller(deps.env, deps.realUid, deps.lookupAccount)
  const config = loadTrustedConfig(deps.configPath)
  const settings = dockerSettings(config)
  const standing = await resolveStanding({caller, directory: deps.directory(config), account, lookupUid: deps.lookupUid, signal})
  const root = await realpath(config.storageRoot).catch(() => {
    throw new ShienError(`The storage root ${config.storageRoot} is not there.`, {
      code: 'STORAGE_MISSING',
      exit: 'remote',
      suggestions: ['Ask an admin: the shared storage may not be mounted on this blade.'],
    })
  })
  const paths = userPaths(root, standing.owner.account)
  return {
    settings,
    role: standing.role,
    owner: {...standing.owner, gid: await deps.lookupGid(standing.owner.uid)},
    limits: containerLimitsFor(standing.ownerGroups, settings),
    home: paths.home,
    lockPath: paths.lock,
    engine: deps.engine(settings),
    ports: new PortPool(join(root, 'ports', 'container'), settings.portPool, 'container', deps.hostname),
    poolLockPath: join(root, 'ports', 'container', '.lock'),
    hostname: deps.hostname,
    signal,
  }
}

/** The primary gid in the passwd entry of `uid` (NSS, so LDAP accounts too). */
export async function getentGid(uid: number): Promise<number> {
  const r = await runTool('getent', ['passwd', String(uid)], {timeoutMs: 30_000})
  const fields = r.stdout.split('\n')[0].split(':')
  if (r.exitCode !== 0 || fields.length < 7 || fields[2] !== String(uid)) {
    throw new ShienError(`Cannot find the group of uid ${uid}: ${firstErrorLine(r.stderr)}.`, {code: 'BAD_CALLER', exit: 'refused'})
  }
  return Number(fields[3])
}
