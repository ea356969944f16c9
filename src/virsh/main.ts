import {runPrivilegedEntry} from '../privileged/entry.js'
import {parseInvocation, wantsJson} from './cli.js'
import {runInvocation} from './commands.js'
import {defaultDeps, type VirshDeps} from './context.js'

export type {VirshDeps} from './context.js'

/**
 * ie-virsh's entry point (bin/ie-virsh.js). Runs as root through sudo: the caller is SUDO_UID
 * and the configuration is /etc/shien/config.json; `deps` exists for tests only.
 * Resolves with the exit code.
 */
export async function main(argv: string[], deps: Partial<VirshDeps> = {}): Promise<number> {
  return runPrivilegedEntry('ie-virsh', deps, wantsJson(argv), (io, signal) =>
    runInvocation(parseInvocation(argv), {...defaultDeps(), ...deps, ...io}, signal),
  )
}
