import type {Readable} from 'node:stream'

import {runAdmitCommand} from '../admission/admit-command.js'
import {DEFAULT_CONFIG_PATH} from '../config/blade-config.js'
import {getentLookup} from '../privileged/caller.js'
import {runPrivilegedEntry} from '../privileged/entry.js'
import {isAdmit, parseInvocation, wantsJson} from './cli.js'
import {runInvocation} from './commands.js'
import {defaultDeps, type VirshDeps} from './context.js'

export type {VirshDeps} from './context.js'

/** What tests may replace: VirshDeps, and the stdin `admit` holds its place by. */
export type MainDeps = Partial<VirshDeps> & {stdin?: Readable}

/**
 * ie-virsh's entry point (bin/ie-virsh.js). Runs as root through sudo: the caller is SUDO_UID
 * and the configuration is /etc/shien/config.json; `deps` exists for tests only.
 * Resolves with the exit code.
 */
export async function main(argv: string[], deps: MainDeps = {}): Promise<number> {
  if (isAdmit(argv)) return admit(argv.slice(1), deps)
  return runPrivilegedEntry('ie-virsh', deps, wantsJson(argv), (io, signal) =>
    runInvocation(parseInvocation(argv), {...defaultDeps(), ...deps, ...io}, signal),
  )
}

/**
 * `ie-virsh admit`, the push queue's helper (src/admission/): the same caller (SUDO_UID, root
 * only) and root-owned configuration as every other command, and the caller's end of stdin.
 */
function admit(argv: string[], deps: MainDeps): Promise<number> {
  return runAdmitCommand(argv, {
    configPath: deps.configPath ?? DEFAULT_CONFIG_PATH,
    env: deps.env ?? process.env,
    realUid: deps.realUid ?? process.getuid?.() ?? -1,
    lookupAccount: deps.lookupAccount ?? getentLookup,
    stdin: deps.stdin ?? process.stdin,
    io: {stdout: deps.stdout, stderr: deps.stderr},
  })
}
