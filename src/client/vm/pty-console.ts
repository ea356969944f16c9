import type {EventEmitter} from 'node:events'

import type {ClientChannel} from 'ssh2'

import {ShienError} from '../../errors.js'
import type {Connection} from '../../transport/connect.js'
import {shellQuote} from '../../transport/remote-exec.js'

/** The local terminal a console is attached to. */
export interface Terminal {
  stdin: EventEmitter & {isTTY?: boolean; setRawMode?: (raw: boolean) => unknown; resume(): unknown; pause(): unknown}
  stdout: EventEmitter & {rows?: number; columns?: number; write(chunk: Buffer): unknown}
  term: string
}

/**
 * Runs `argv` on the blade in a pseudo-terminal and connects it to the local one: raw mode,
 * every byte passed through both ways (Ctrl-] too, which ends `virsh console` on the blade),
 * window size changes forwarded. Resolves with the remote exit code when the session ends.
 */
export async function attachConsole(connection: Connection, argv: string[], tty: Terminal): Promise<number> {
  requireTerminal(tty)
  const pty = {term: tty.term, rows: tty.stdout.rows ?? 24, cols: tty.stdout.columns ?? 80}
  return new Promise((resolve, reject) => {
    connection.client.exec(argv.map(shellQuote).join(' '), {pty}, (error, channel) => {
      if (error) return reject(new ShienError(`Cannot open a terminal on the blade: ${error.message}`, {code: 'REMOTE_EXEC', exit: 'remote', cause: error}))
      resolve(passThrough(channel, tty))
    })
  })
}

/**
 * Throws unless stdin is a terminal that can go into raw mode. `what` names the command in the
 * message; `otherwise` adds what to do instead of using a terminal.
 */
export function requireTerminal(tty: Terminal, what = 'console', otherwise: string[] = []): void {
  if (!tty.stdin.isTTY || typeof tty.stdin.setRawMode !== 'function') {
    throw new ShienError(`${what} needs a terminal.`, {code: 'NOT_A_TERMINAL', exit: 'usage', suggestions: ['Run it in a terminal window, not through a pipe.', ...otherwise]})
  }
}

function passThrough(channel: ClientChannel, tty: Terminal): Promise<number> {
  return new Promise((resolve) => {
    let exitCode = 255
    const toRemote = (chunk: Buffer) => channel.write(chunk)
    const resize = () => channel.setWindow(tty.stdout.rows ?? 24, tty.stdout.columns ?? 80, 0, 0)
    tty.stdin.setRawMode?.(true)
    tty.stdin.on('data', toRemote)
    tty.stdin.resume()
    tty.stdout.on('resize', resize)
    channel.on('data', (chunk: Buffer) => tty.stdout.write(chunk))
    channel.stderr.on('data', (chunk: Buffer) => tty.stdout.write(chunk))
    channel.on('exit', (code: number | null) => (exitCode = code ?? 255))
    channel.on('close', () => {
      // Give the terminal back as it was, whatever ended the session.
      tty.stdin.off('data', toRemote)
      tty.stdin.setRawMode?.(false)
      tty.stdin.pause()
      tty.stdout.removeListener('resize', resize)
      resolve(exitCode)
    })
  })
}
