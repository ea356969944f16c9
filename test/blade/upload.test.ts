import {createHash, randomBytes} from 'node:crypto'
import {createReadStream, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import type {SFTPWrapper} from 'ssh2'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import type {BladeContext} from '../../src/blade/caller.js'
import {hashPart, incomingPaths} from '../../src/blade/incoming.js'
import {loadBladeConfig} from '../../src/config/blade-config.js'
import {userPaths} from '../../src/config/storage-layout.js'
import {connect, type Connection} from '../../src/transport/connect.js'
import {sftpCall} from '../../src/transport/sftp-call.js'
import {resolveSshTarget} from '../../src/transport/ssh-target.js'
import {uploadResumable, type UploadOptions} from '../../src/transport/sftp-upload.js'
import {ensureLocalBlade, type LocalBlade} from '../support/local-blade.js'

const SIZE = 96 * 1024 * 1024
const WINDOW = 8 * 1024 * 1024
const CHUNK = 256 * 1024

let blade: LocalBlade
let conn: Connection
let source: string
let sourceSha: string
let part: string
let ctx: BladeContext

async function channels(n: number): Promise<SFTPWrapper[]> {
  return Promise.all(Array.from({length: n}, () => sftpCall<SFTPWrapper>((cb) => conn.client.sftp(cb))))
}

function options(chans: SFTPWrapper[], extra: Partial<UploadOptions> = {}): UploadOptions {
  return {
    channels: chans,
    partPath: part,
    source: {size: SIZE, open: () => createReadStream(source, {highWaterMark: 1 << 20})},
    window: WINDOW,
    // The blade side's own hashing, run here on the same file the blade holds.
    remoteHashes: (prefix, blockSize) => hashPart(ctx, 'upload-test', prefix, blockSize),
    ...extra,
  }
}

beforeAll(async () => {
  blade = await ensureLocalBlade()
  const dir = mkdtempSync(join(tmpdir(), 'upload-'))
  source = join(dir, 'payload.bin')
  writeFileSync(source, randomBytes(SIZE))
  sourceSha = createHash('sha256').update(readFileSync(source)).digest('hex')
  ctx = {account: blade.account, config: loadBladeConfig(), paths: userPaths(blade.storageRoot, blade.account)}
  part = incomingPaths(ctx, 'upload-test').part
  conn = await connect({
    target: resolveSshTarget('blade', {home: blade.laptopHome}),
    knownHostsPath: blade.knownHosts,
    confirmNewHostKey: async () => false,
  })
})

afterAll(() => {
  conn?.close()
  rmSync(part, {force: true})
})

describe('uploadResumable over real sshd', () => {
  it('sends the whole file through two channels, hashing on the way', async () => {
    rmSync(part, {force: true})
    const result = await uploadResumable(options(await channels(2)))
    expect(result).toMatchObject({sha256: sourceSha, size: SIZE, resumedFrom: 0, bytesSent: SIZE})
    expect(createHash('sha256').update(readFileSync(part)).digest('hex')).toBe(sourceSha)
    expect(statSync(part).mode & 0o777).toBe(0o600)
  })

  it.each([0.2, 0.5, 0.85])('resumes after being cut at %s of the way: sends less than what remained plus one chunk', async (fraction) => {
    rmSync(part, {force: true})
    const cut = new AbortController()
    await expect(
      uploadResumable(options(await channels(2), {
        signal: cut.signal,
        onProgress: (bytes) => {
          if (bytes >= SIZE * fraction) cut.abort(new Error('cut'))
        },
      })),
    ).rejects.toThrow()
    const onBlade = statSync(part).size
    expect(onBlade).toBeGreaterThan(0)
    const result = await uploadResumable(options(await channels(2)))
    expect(result.sha256).toBe(sourceSha)
    expect(result.resumedFrom).toBeGreaterThan(0)
    expect(result.bytesSent).toBeLessThan(SIZE - onBlade + CHUNK)
    expect(createHash('sha256').update(readFileSync(part)).digest('hex')).toBe(sourceSha)
  })

  it('starts over when the bytes on the blade are not a prefix of the box', async () => {
    writeFileSync(part, randomBytes(40 * 1024 * 1024))
    const result = await uploadResumable(options(await channels(1)))
    expect(result.resumedFrom).toBe(0)
    expect(result.bytesSent).toBe(SIZE)
    expect(createHash('sha256').update(readFileSync(part)).digest('hex')).toBe(sourceSha)
  })
})
