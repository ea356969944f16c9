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
      const onAbort = () => channel.close()
      opts.signal?.addEventListener('abort', onAbort, {once: true})
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
        if (pending) {
          err += pending
          opts.onStderrLine?.(pending)
        }
        if (opts.signal?.aborted) return reject(opts.signal.reason)
        resolve({code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: err})
      })
    })
  })
}
