/**
 * The upload when the connection goes under it, against a real sshd of the test's own (the
 * jump lab's outer gateway, internal-sftp): the student's sshd session killed mid-upload, and
 * Ctrl-C with the connection torn down right after, as the push's cleanup does. Each ends
 * with its own error at once, never a hang on writes or closes that no one will answer.
 */
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {Readable} from 'node:stream'

import {execa} from 'execa'
import ssh2, {type Client as ClientType, type SFTPWrapper} from 'ssh2'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {isShienError} from '../../src/errors.js'
import {sftpCall} from '../../src/transport/sftp-call.js'
import {uploadResumable} from '../../src/transport/sftp-upload.js'
import {type JumpLab, startJumpLab} from '../support/jump-lab.js'

const MiB = 2 ** 20
let lab: JumpLab

beforeAll(async () => {
  lab = await startJumpLab()
}, 120_000)

afterAll(async () => {
  await lab?.stop()
})

async function login(): Promise<{client: ClientType; channels: SFTPWrapper[]}> {
  const client = new ssh2.Client()
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve())
    client.once('error', reject)
    client.connect({host: '127.0.0.1', port: lab.gw1Port, username: 'root', privateKey: readFileSync(lab.clientKey)})
  })
  // Errors after the login are the upload's to report; a listener keeps them from crashing the test.
  client.on('error', () => undefined)
  const channels: SFTPWrapper[] = []
  for (let i = 0; i < 2; i++) channels.push(await sftpCall<SFTPWrapper>((cb) => client.sftp(cb)))
  return {client, channels}
}

/** 64 MiB of zeros that runs `at4MiB` (awaited) once 4 MiB were read. */
function source(at4MiB: () => Promise<void>) {
  return {
    size: 64 * MiB,
    open: () => Readable.from((async function* () {
      for (let i = 0; i < 64; i++) {
        if (i === 4) await at4MiB()
        yield Buffer.alloc(MiB)
      }
    })()),
  }
}

const remoteHashes = () => Promise.reject(new Error('a fresh upload asks for no hashes'))

describe('an upload whose connection goes', () => {
  it('fails with CONNECTION_LOST, the share sent, when the student\'s sshd session is killed', async () => {
    const {client, channels} = await login()
    const partPath = join(lab.dir, 'killed.box.part')
    const killSession = async () => {
      const listener = readFileSync(join(lab.dir, 'gw1.pid'), 'utf8').trim()
      await execa('pkill', ['-KILL', '-P', listener])
    }
    const started = Date.now()
    const error = await uploadResumable({channels, partPath, source: source(killSession), remoteHashes}).catch((e: unknown) => e)
    client.end()
    expect(isShienError(error) && error.code).toBe('CONNECTION_LOST')
    expect((error as Error).message).toMatch(/^The connection to the blade was lost during the upload, at \d+%: run the same command to resume\.$/)
    expect((error as {exitCode: number}).exitCode).toBe(4)
    // The closes of the dead channels are not waited for beyond their moment.
    expect(Date.now() - started).toBeLessThan(20_000)
  }, 60_000)

  it('ends with the interruption itself on Ctrl-C, even as the connection is torn down with it', async () => {
    const {client, channels} = await login()
    const partPath = join(lab.dir, 'interrupted.box.part')
    const controller = new AbortController()
    const reason = new Error('interrupted')
    const interrupt = async () => {
      controller.abort(reason)
      client.end()
    }
    const error = await uploadResumable({channels, partPath, source: source(interrupt), remoteHashes, signal: controller.signal}).catch((e: unknown) => e)
    expect(error).toBe(reason)
  }, 60_000)
})
