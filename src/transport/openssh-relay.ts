import {mkdtemp, rm} from 'node:fs/promises'
import {createServer, type Socket} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import type {Duplex} from 'node:stream'

/**
 * What OpenSSH runs as its ProxyCommand (the `exec` is OpenSSH's): this same node, joining its
 * stdin and stdout to the relay's socket. No `'` and no `%` in it: it sits in single quotes in
 * a ProxyCommand, where OpenSSH expands `%` tokens.
 */
const RELAY_SCRIPT =
  'const s=require("net").connect(process.argv[1]);process.stdin.pipe(s).pipe(process.stdout);' +
  's.on("error",()=>process.exit(1));s.on("close",()=>process.exit(0))'

/** A word for OpenSSH's ProxyCommand line, which a shell reads after `%` tokens are expanded. */
function shellWord(word: string): string {
  return `'${word.replaceAll("'", `'\\''`).replaceAll('%', '%%')}'`
}

/**
 * Lends OpenSSH a route shien has already opened (a TCP connection, or a channel forwarded by
 * a verified ProxyJump hop), so that the `ssh` shien runs reaches the host exactly as ssh2
 * does, without logging in to the hops again. The route is offered on a Unix socket in a
 * folder only this account can enter (0700), for one connection, and `use` is given the
 * ProxyCommand that reaches it. Everything is closed and removed when `use` settles.
 */
export async function withRelay<T>(route: () => Promise<Duplex>, use: (proxyCommand: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'shien-relay-'))
  const path = join(dir, 'relay.sock')
  const opened: Array<Duplex | Socket> = []
  const server = createServer((socket) => {
    // One connection: OpenSSH's. The folder's mode keeps others out; closing keeps it one.
    server.close()
    opened.push(socket)
    socket.on('error', () => socket.destroy())
    route().then(
      (stream) => {
        opened.push(stream)
        // OpenSSH gave up (or was stopped) while the route was being opened.
        if (socket.destroyed) return void stream.destroy()
        stream.on('error', () => socket.destroy())
        stream.on('close', () => socket.end())
        socket.on('close', () => stream.destroy())
        socket.pipe(stream).pipe(socket)
      },
      () => socket.destroy(),
    )
  })
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(path, resolve)
    })
    return await use(`${shellWord(process.execPath)} -e ${shellWord(RELAY_SCRIPT)} ${shellWord(path)}`)
  } finally {
    server.close()
    for (const stream of opened) stream.destroy()
    await rm(dir, {recursive: true, force: true})
  }
}
