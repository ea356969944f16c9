import type {Client} from 'ssh2'

import {ShienError} from '../errors.js'

/** Quotes one argument for the POSIX shell that sshd runs commands through. */
export function shellQuote(arg: string): string {
  if (arg.includes('\0')) throw new ShienError('An argument contains a NUL byte.', {code: 'BAD_ARGUMENT', exit: 'usage'})
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`
}

export interface ExecResult {
  code: number | null
  signal?: string
  stdout: string
  stderr: string
}

export interface ExecOptions {
  signal?: AbortSignal
  /** Called with each complete line of stderr as it arrives (the blade reports progress there). */
  onStderrLine?: (line: string) => void
  /**
   * Written to the command's stdin, so secrets reach it without argv. Stdin then stays open
   * while the command runs, and an abort ends it (EOF) instead of closing the channel: the
   * command can clean up and report, and the result is returned. The channel is closed
   * `abortGraceMs` (default 30 s) after the abort if the command has not ended by then.
   */
  stdin?: string
  abortGraceMs?: number
}

/**
 * Runs argv on the remote host. sshd hands the command to the user's shell, so every argument
 * is quoted; nothing the user typed is ever interpreted by that shell.
 */
export function remoteExec(client: Client, argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const command = argv.map(shellQuote).join(' ')
  return new Promise((resolve, reject) => {
    client.exec(command, (error, channel) => {
      if (error) return reject(new ShienError(`Cannot run ${argv[0]} on the blade: ${error.message}`, {code: 'REMOTE_EXEC', exit: 'remote', cause: error}))
      const out: Buffer[] = []
      let err = ''
      let pending = ''
      const graceful = opts.stdin !== undefined
      let grace: NodeJS.Timeout | undefined
      const onAbort = graceful
        ? () => {
            channel.end()
            grace = setTimeout(() => channel.close(), opts.abortGraceMs ?? 30_000)
          }
        : () => {
            // Ctrl-C reaches the blade as SIGINT, so the command stops its own work (qemu-img,
            // guestfish) and removes what it half made before the channel goes.
            channel.signal('INT')
            grace = setTimeout(() => channel.close(), opts.abortGraceMs ?? 10_000)
          }
      opts.signal?.addEventListener('abort', onAbort, {once: true})
      if (graceful) channel.write(opts.stdin)
      channel.on('data', (chunk: Buffer) => out.push(chunk))
      channel.stderr.on('data', (chunk: Buffer) => {
        const text = pending + chunk.toString('utf8')
        const lines = text.split('\n')
        pending = lines.pop() ?? ''
        for (const line of lines) {
          err += line + '\n'
          opts.onStderrLine?.(line)
        }
      })
      channel.on('close', (code: number | null, signal?: string) => {
        opts.signal?.removeEventListener('abort', onAbort)
        clearTimeout(grace)
        if (pending) {
          err += pending
          opts.onStderrLine?.(pending)
        }
        if (opts.signal?.aborted && !graceful) return reject(opts.signal.reason)
        resolve({code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: err})
      })
    })
  })
}
