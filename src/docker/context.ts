import {join} from 'node:path'

import type {Role} from '../directory/directory.js'
import type {DockerSettings} from '../config/blade-config.js'
import {defaultPrivilegedDeps, resolvePrivilegedRun, type PrivilegedDeps} from '../privileged/context.js'
import {PortPool} from '../privileged/ports.js'
import type {Owner} from '../privileged/standing.js'
import {CliEngine, type ContainerEngine} from './engine.js'
import {checkAccount} from './names.js'
import {containerLimitsFor, dockerSettings, type DockerConfig, type DockerLimits} from './settings.js'

/** What ie-docker's `main` needs from the outside world; tests replace parts of it. */
export interface DockerDeps extends PrivilegedDeps {
  engine: (settings: DockerSettings) => ContainerEngine
}

export function defaultDockerDeps(): DockerDeps {
  return {...defaultPrivilegedDeps(), engine: (s) => new CliEngine(s)}
}

/** Everything a command works with, resolved once per run. */
export interface DockerContext {
  settings: DockerConfig
  role: Role
  /** Whose containers the command acts on: the caller, or the account an admin named. */
  owner: Owner & {gid: number}
  limits: DockerLimits
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
  const run = await resolvePrivilegedRun('ie-docker', deps, signal, account)
  const {root, paths, owner} = run
  const settings = dockerSettings(run.config)
  checkAccount(owner.account)
  return {
    settings,
    role: run.role,
    owner,
    limits: containerLimitsFor(run.ownerGroups, settings),
    home: paths.home,
    lockPath: paths.lock,
    engine: deps.engine(settings),
    ports: new PortPool(join(root, 'ports', 'container'), settings.portPool, 'container', deps.hostname),
    poolLockPath: join(root, 'ports', 'container', '.lock'),
    hostname: deps.hostname,
    signal,
  }
}
