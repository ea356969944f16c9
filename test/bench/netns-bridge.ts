// Run inside the delta bench's network namespace: listens on 127.0.0.1:PORT there and carries
// each connection to a Unix socket, which the bench outside joins to the blade's sshd. Only the
// namespace's loopback (shaped with tc) is between the laptop and this bridge.
import {connect, createServer} from 'node:net'

const [socketPath, port] = process.argv.slice(2)
if (!socketPath || !port) {
  console.error('usage: netns-bridge SOCKET PORT')
  process.exit(2)
}
const server = createServer((client) => {
  const upstream = connect(socketPath)
  client.pipe(upstream).pipe(client)
  const close = () => {
    client.destroy()
    upstream.destroy()
  }
  client.on('error', close)
  upstream.on('error', close)
})
server.listen(Number(port), '127.0.0.1', () => console.log('listening'))
process.on('SIGTERM', () => process.exit(0))
