import type {Readable} from 'node:stream'

import {runAdmitCommand} from '../admission/admit-command.js'
import {defaultPrivilegedDeps} from '../privileged/context.js'
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
  const d = {...defaultPrivilegedDeps(), ...deps}
  return runAdmitCommand(argv, {
    configPath: d.configPath,
    env: d.env,
    realUid: d.realUid,
    lookupAccount: d.lookupAccount,
    stdin: deps.stdin ?? process.stdin,
    io: {stdout: d.stdout, stderr: d.stderr},
  })
}
