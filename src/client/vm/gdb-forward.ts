import {createServer, type Socket} from 'node:net'

import type {Connection} from '../../transport/connect.js'

export interface GdbForward {
  /** The local port gdb connects to. */
  port: number
  /** Resolves when the forward has closed (the signal aborted). */
  closed: Promise<void>
}

/**
 * Forwards a local TCP port on the laptop's loopback to the gdb stub's UNIX socket on the blade,
 * over the SSH connection (OpenSSH's direct-streamlocal channel, what `ssh -L PORT:SOCKET`
 * uses). The blade's sshd opens the socket as the student, so only its owner gets through.
 * Each gdb connection gets its own channel; the forward lasts until `signal` aborts.
 */
export async function forwardGdb(connection: Connection, socket: string, o: {port: number; signal: AbortSignal}): Promise<GdbForward> {
  const open = new Set<Socket>()
  const server = createServer((local) => {
    open.add(local)
    local.once('close', () => open.delete(local))
    local.pause()
    connection.client.openssh_forwardOutStreamLocal(socket, (error, remote) => {
      if (error) {
        local.destroy()
        return
      }
      local.pipe(remote).pipe(local)
      local.resume()
      const end = () => {
        local.destroy()
        remote.destroy()
      }
      local.once('close', end)
      remote.once('close', end)
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(o.port, '127.0.0.1', () => resolve())
  })
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : o.port
  const closed = new Promise<void>((resolve) => {
    const stop = () => {
      for (const s of open) s.destroy()
      server.close(() => resolve())
    }
    if (o.signal.aborted) stop()
    else o.signal.addEventListener('abort', stop, {once: true})
  })
  return {port, closed}
}
