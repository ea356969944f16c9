import {runPrivilegedEntry} from '../privileged/entry.js'
import {parseDockerInvocation, wantsJson} from './cli.js'
import {runDockerInvocation} from './commands.js'
import {defaultDockerDeps, type DockerDeps} from './context.js'

export type {DockerDeps} from './context.js'

/**
 * ie-docker's entry point (bin/ie-docker.js). Runs as root through sudo: the caller is
 * SUDO_UID and the configuration /etc/shien/config.json; `deps` exists for tests only.
 * Resolves with the exit code.
 */
export async function main(argv: string[], deps: Partial<DockerDeps> = {}): Promise<number> {
  return runPrivilegedEntry('ie-docker', deps, wantsJson(argv), (io, signal) =>
    runDockerInvocation(parseDockerInvocation(argv), {...defaultDockerDeps(), ...deps, ...io}, signal),
  )
}
