import {Args, Flags} from '@oclif/core'

import type {BladeClient} from '../blade-client.js'
import type {Connection} from '../../transport/connect.js'
import {ShienCommand} from '../../ui/base-command.js'
import {bladeAccess, jumpFlag} from '../../ui/host-key-prompt.js'
import {planVm, type VmPlan} from '../vm/plan.js'
import {attachConsole, requireTerminal, type Terminal} from '../vm/pty-console.js'
import {onBlade} from '../vm/session.js'
import {streamOnBlade, type StreamIo} from '../vm/stream-exec.js'

/** Flags every `shien container` command takes (the same as `shien vm`). */
export const containerFlags = {
  host: Flags.string({char: 'H', description: 'Blade: a Host from ~/.ssh/config, HOST, USER@HOST or HOST:PORT (default: .shien.json or SHIEN_HOST).'}),
  jump: jumpFlag,
  'accept-new-host-key': Flags.boolean({description: 'Trust an unknown blade host key without asking (a changed key is still refused).'}),
  account: Flags.string({description: "Admins only: act on this account's containers."}),
}

export const nameArg = {name: Args.string({required: true, description: 'Container name (without your account prefix).'})}

type BladeFlags = {host?: string; jump?: string; 'accept-new-host-key'?: boolean; account?: string}

/**
 * The base of the `shien container` commands: each runs one `sudo -n ie-docker --json ...` on
 * the blade over the SSH connection of `shien push`, so the blade decides what is allowed;
 * `attach` and `run -it` run it in a terminal on the blade instead (see onTerminal).
 */
export abstract class ContainerCommand extends ShienCommand {
  /** `onStderrLine` gets what ie-docker prints on stderr as it comes (build's steps). */
  protected async ieDocker<T>(flags: BladeFlags, args: string[], onStderrLine?: (line: string) => void): Promise<T> {
    return this.onBlade(flags, (blade) => blade.docker<T>([...this.globalArgs(flags), ...args], {signal: this.abort.signal, onStderrLine}))
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
    return this.onBlade(flags, (_blade, connection) => attachConsole(connection, argv, tty))
  }

  /**
   * Runs `sudo -n ie-docker ARGS` (no --json) on the blade without a terminal, its output
   * written here as it comes; resolves with its exit code (logs, exec without -t).
   */
  protected async streamed(flags: BladeFlags, args: string[], io: StreamIo): Promise<number> {
    const argv = ['sudo', '-n', 'ie-docker', ...this.globalArgs(flags), ...args]
    return this.onBlade(flags, (_blade, connection) => streamOnBlade(connection, argv, io, this.abort.signal))
  }

  // Global options go before the command: after `run`, arguments belong to the container.
  private globalArgs(flags: BladeFlags): string[] {
    return flags.account === undefined ? [] : ['--account', flags.account]
  }

  private onBlade<T>(flags: BladeFlags, work: (blade: BladeClient, connection: Connection) => Promise<T>): Promise<T> {
    const plan: VmPlan = planVm({host: flags.host, jump: flags.jump, acceptNewHostKey: flags['accept-new-host-key'], account: flags.account, cwd: process.cwd(), env: process.env})
    const deps = {signal: this.abort.signal, ...bladeAccess(plan.acceptNewHostKey)}
    return onBlade(plan, deps, work)
  }
}
