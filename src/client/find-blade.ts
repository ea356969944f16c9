import {homedir} from 'node:os'

import {loadProjectConfig, type ProjectConfig} from './project-config.js'
import {resolveSshTarget, type SshTarget} from '../transport/ssh-target.js'

/** Which blade a laptop command talks to, and how to reach it. */
export interface BladeTarget {
  target: SshTarget
  /** The blade's own shien command (`.shien.json` bladeCommand, else `shien`). */
  bladeCommand: string
}

export interface FindBladeInputs {
  host?: string
  /** ProxyJump hops from the command line (`--jump`, like `ssh -J`). */
  jump?: string
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
  return {target: resolveSshTarget(host, {home, jump: input.jump}), bladeCommand: config.bladeCommand ?? 'shien'}
}
