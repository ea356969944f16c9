import {Args, Flags} from '@oclif/core'

import {ShienError} from '../../errors.js'
import type {Connection} from '../../transport/connect.js'
import {remoteExec} from '../../transport/remote-exec.js'
import {ShienCommand} from '../../ui/base-command.js'
import {bladeAccess} from '../../ui/host-key-prompt.js'
import {planVm, type VmPlan} from '../vm/plan.js'
import {attachConsole, requireTerminal, type Terminal} from '../vm/pty-console.js'
import {withBlade} from '../vm/session.js'

/** Flags every `shien container` command takes (the same as `shien vm`). */
export const containerFlags = {
  host: Flags.string({char: 'H', description: 'Blade: a Host from ~/.ssh/config, HOST, USER@HOST or HOST:PORT (default: .shien.json or SHIEN_HOST).'}),
  'accept-new-host-key': Flags.boolean({description: 'Trust an unknown blade host key without asking (a changed key is still refused).'}),
  account: Flags.string({description: "Admins only: act on this account's containers."}),
}

export const nameArg = {name: Args.string({required: true, description: 'Container name (without your account prefix).'})}

type BladeFlags = {host?: string; 'accept-new-host-key'?: boolean; account?: string}

/**
 * The base of the `shien container` commands: each runs one `sudo -n ie-docker --json ...` on
 * the blade over the SSH connection of `shien push`, so the blade decides what is allowed;
 * `attach` and `run -it` run it in a terminal on the blade instead (see onTerminal).
 */
export abstract class ContainerCommand extends ShienCommand {
  /** `onStderrLine` gets what ie-docker prints on stderr as it comes (build's steps). */
  protected async ieDocker<T>(flags: BladeFlags, args: string[], onStderrLine?: (line: string) => void): Promise<T> {
    const argv = ['sudo', '-n', 'ie-docker', '--json', ...this.globalArgs(flags), ...args]
    return this.withBlade(flags, async (connection) => parseReply<T>(await remoteExec(connection.client, argv, {signal: this.abort.signal, onStderrLine})))
  }

  /**
   * Runs `sudo -n ie-docker ARGS` (no --json: a person reads it) in a terminal on the blade,
   * connected to this one, and resolves with its exit code: the container's, or ie-docker's
   * when it refused (its message is then on the terminal). `what` and `otherwise` word the
   * refusal when stdin is not a terminal, which comes before any connection.
   */
  protected async onTerminal(flags: BladeFlags, args: string[], what: string, otherwise: string[] = []): Promise<number> {
    const tty: Terminal = {stdin: process.stdin, stdout: process.stdout, term: process.env.TERM || 'xterm-256color'}
    requireTerminal(tty, what, otherwise)
    const argv = ['sudo', '-n', 'ie-docker', ...this.globalArgs(flags), ...args]
    return this.withBlade(flags, (connection) => attachConsole(connection, argv, tty))
  }

  // Global options go before the command: after `run`, arguments belong to the container.
  private globalArgs(flags: BladeFlags): string[] {
    return flags.account === undefined ? [] : ['--account', flags.account]
  }

  private withBlade<T>(flags: BladeFlags, work: (connection: Connection) => Promise<T>): Promise<T> {
    const plan: VmPlan = planVm({host: flags.host, acceptNewHostKey: flags['accept-new-host-key'], account: flags.account, cwd: process.cwd(), env: process.env})
    const deps = {signal: this.abort.signal, ...bladeAccess(plan.acceptNewHostKey)}
    return withBlade(plan, deps, work)
  }
}

function parseReply<T>(r: {stdout: string; stderr: string; code: number | null}): T {
  let body: unknown
  try {
    body = JSON.parse(r.stdout)
  } catch {
    const missing = r.code === 127 || /command not found|a password is required/.test(r.stderr)
    throw new ShienError(missing ? 'ie-docker is not installed (or not allowed by sudo) on the blade.' : `ie-docker failed on the blade (exit ${r.code}): ${r.stderr.trim().split('\n').pop() ?? ''}`, {
      code: missing ? 'BLADE_NOT_INSTALLED' : 'REMOTE_FAILED',
      exit: 'remote',
      suggestions: ['Ask an admin to install ie-docker and its sudo rule on the blade (docs/ie-docker.md).'],
    })
  }
  const error = (body as {error?: {code: string; message: string; exitCode: number; suggestions: string[]}}).error
  if (error) {
    const e = new ShienError(`${error.message} (on the blade)`, {code: error.code, exit: 'remote', suggestions: error.suggestions})
    // Keep the blade's usage and refusal exit codes: scripts tell them apart.
    if ([2, 3, 6].includes(error.exitCode)) Object.assign(e, {exitCode: error.exitCode})
    throw e
  }
  return body as T
}
