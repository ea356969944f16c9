import {connect as tcpConnect} from 'node:net'

/**
 * Waits until a VM's sshd sends its banner on the forwarded port (qemu's user network accepts
 * connections before the guest answers them), without logging in: the first login is the
 * test's. Resolves with the milliseconds it waited.
 */
export async function waitForBanner(port: number, timeoutMs: number): Promise<number> {
  const started = performance.now()
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const banner = await new Promise<string>((resolve) => {
      let seen = ''
      const socket = tcpConnect(port, '127.0.0.1')
      const done = () => {
        socket.destroy()
        resolve(seen)
      }
      socket.setTimeout(5000, done)
      socket.on('data', (chunk) => {
        seen += chunk.toString()
        if (seen.includes('\n')) done()
      })
      socket.on('error', done)
      socket.on('close', done)
    })
    if (banner.startsWith('SSH-2.0-')) return performance.now() - started
    await new Promise((f) => setTimeout(f, 3000))
  }
  throw new Error(`the VM's sshd on port ${port} did not answer within ${timeoutMs / 1000} s`)
}
