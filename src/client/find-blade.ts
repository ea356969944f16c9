import {homedir} from 'node:os'
import {join} from 'node:path'

import {loadProjectConfig, type ProjectConfig} from './project-config.js'
import {resolveSshTarget, type SshTarget} from '../transport/ssh-target.js'

/** Which blade a laptop command talks to, and how to reach it. */
export interface BladeTarget {
  target: SshTarget
  knownHostsPath: string
  /** The blade's own shien command (`.shien.json` bladeCommand, else `shien`). */
  bladeCommand: string
}

export interface FindBladeInputs {
  host?: string
  cwd: string
  env: NodeJS.ProcessEnv
}

/** The one place the blade's name is found: --host, then SHIEN_HOST, then .shien.json or the user's config. */
export function bladeHost(input: FindBladeInputs, config: ProjectConfig = loadProjectConfig(input.cwd, input.env)): string | undefined {
  return input.host ?? input.env.SHIEN_HOST ?? config.host
}

/**
 * Finds the blade (bladeHost) and resolves it through ~/.ssh/config; undefined when nothing
 * names one, so each command can say what it needed the blade for. A bad ~/.ssh/config throws.
 */
export function findBlade(input: FindBladeInputs, config: ProjectConfig = loadProjectConfig(input.cwd, input.env)): BladeTarget | undefined {
  const host = bladeHost(input, config)
  if (!host) return undefined
  const home = input.env.HOME || homedir()
  return {target: resolveSshTarget(host, {home}), knownHostsPath: join(home, '.ssh', 'known_hosts'), bladeCommand: config.bladeCommand ?? 'shien'}
}
