/** probePort against real sockets on loopback, one server per behaviour a guest port can show. */
import {createServer, type Server} from 'node:net'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {probePort} from '../../../src/audit/live/port-probe.js'

const servers: Server[] = []
async function serve(onConnection: (s: import('node:net').Socket) => void): Promise<number> {
  const server = createServer(onConnection)
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as {port: number}).port
}

let banner: number
let silent: number
let slirpClosed: number
let refused: number
beforeAll(async () => {
  banner = await serve((s) => s.write('SSH-2.0-OpenSSH_9.2\r\n'))
  silent = await serve(() => undefined)
  // What qemu's slirp does for a forward to a guest port nobody listens on: accept, then close.
  slirpClosed = await serve((s) => setTimeout(() => s.end(), 5))
  refused = await serve(() => undefined)
  await new Promise((resolve) => servers.pop()!.close(resolve))
})
afterAll(async () => {
  for (const s of servers) await new Promise((resolve) => s.close(resolve))
})

const o = {connectTimeoutMs: 2000, graceMs: 300}

describe('probePort', () => {
  it('through a forward: data or a silent open connection is open, an early close is closed', async () => {
    const via = 'forward' as const
    expect(await probePort({host: '127.0.0.1', port: banner, via}, o)).toBe('open')
    expect(await probePort({host: '127.0.0.1', port: silent, via}, o)).toBe('open')
    expect(await probePort({host: '127.0.0.1', port: slirpClosed, via}, o)).toBe('closed')
    expect(await probePort({host: '127.0.0.1', port: refused, via}, o)).toBe('closed')
  })

  it('at an address: a connection is open, a refusal closed', async () => {
    const via = 'address' as const
    expect(await probePort({host: '127.0.0.1', port: silent, via}, o)).toBe('open')
    expect(await probePort({host: '127.0.0.1', port: refused, via}, o)).toBe('closed')
  })

  it('gives up as filtered when the audit is cancelled', async () => {
    const controller = new AbortController()
    const pending = probePort({host: '127.0.0.1', port: silent, via: 'forward'}, {connectTimeoutMs: 5000, graceMs: 5000, signal: controller.signal})
    controller.abort()
    expect(await pending).toBe('filtered')
  })
})
