// One shien upload of a box to the local blade, in its own process so that its peak RSS is
// its own: connect, prepare, parallel SFTP upload with sha256, blade-side check and rename.
import {createReadStream, statSync} from 'node:fs'

import type {SFTPWrapper} from 'ssh2'

import {BladeClient} from '../../src/client/blade-client.js'
import {connect} from '../../src/transport/connect.js'
import {sftpCall} from '../../src/transport/sftp-call.js'
import {resolveSshTarget} from '../../src/transport/ssh-target.js'
import {uploadResumable} from '../../src/transport/sftp-upload.js'

const [box, name, laptopHome, channelCount = '3'] = process.argv.slice(2)
const size = statSync(box).size
const conn = await connect({
  target: resolveSshTarget('blade', {home: laptopHome}),
  knownHostsPath: `${laptopHome}/.ssh/known_hosts`,
  confirmNewHostKey: async () => false,
})
const blade = new BladeClient(conn)
const t0 = performance.now()
const prepared = await blade.call('prepare', {name, size})
const channels = await Promise.all(Array.from({length: Number(channelCount)}, () => sftpCall<SFTPWrapper>((cb) => conn.client.sftp(cb))))
const result = await uploadResumable({
  channels,
  partPath: prepared.partPath,
  source: {size, open: () => createReadStream(box, {highWaterMark: 1 << 20})},
  remoteHashes: (prefix, blockSize) => blade.call('hash', {name, prefix, 'block-size': blockSize}),
})
await blade.call('commit', {name, size})
const seconds = (performance.now() - t0) / 1000
conn.close()
console.log(JSON.stringify({seconds, bytes: size, maxRssKiB: process.resourceUsage().maxRSS}))
