import type {Readable, Writable} from 'node:stream'

import {ShienError} from '../../errors.js'
import type {Connection} from '../../transport/connect.js'
import {shellQuote} from '../../transport/remote-exec.js'

/**
 * Where a streamed command's bytes go, and what feeds its stdin: a stream, 'open' (nothing is
 * sent, but its stdin stays open until the command ends: the blade's side reads the end of its
 * stdin as the laptop going away), or nothing (stdin is closed at once).
 */
export interface StreamIo {
  stdin?: Readable | 'open'
  stdout: Writable
  stderr: Writable
}

/**
 * Runs `argv` on the blade without a terminal, its stdout and stderr written here as they come
 * and `io.stdin` (if any) sent to it until it ends. Resolves with the remote exit code. An
 * abort closes the channel (the blade's side sees its stdin end and its output closed) and
 * rejects with the abort's reason.
 */
export function streamOnBlade(connection: Connection, argv: string[], io: StreamIo, signal: AbortSignal): Promise<number> {
  return new Promise((resolve, reject) => {
    connection.client.exec(argv.map(shellQuote).join(' '), (error, channel) => {
      if (error) return reject(new ShienError(`Cannot run a command on the blade: ${error.message}`, {code: 'REMOTE_EXEC', exit: 'remote', cause: error}))
      let exitCode = 255
      const onAbort = () => channel.close()
      signal.addEventListener('abort', onAbort, {once: true})
      channel.on('data', (chunk: Buffer) => io.stdout.write(chunk))
      channel.stderr.on('data', (chunk: Buffer) => io.stderr.write(chunk))
      channel.on('exit', (code: number | null) => (exitCode = code ?? 255))
      const stdin = io.stdin === 'open' ? undefined : io.stdin
      if (stdin) stdin.pipe(channel)
      else if (io.stdin !== 'open') channel.end()
      channel.on('close', () => {
        signal.removeEventListener('abort', onAbort)
        stdin?.unpipe(channel)
        if (signal.aborted) reject(signal.reason)
        else resolve(exitCode)
      })
    })
  })
}
