/**
 * A link that goes silent under an upload, as campus Wi-Fi does: a relay between shien's own
 * connection (connect(), with its keepalives) and a real sshd of the test's own (the jump lab's
 * outer gateway) stops carrying bytes either way, without closing anything. A stall shorter
 * than the documented bound (keepalives every 15 s, the fourth finding three unanswered: about 60 s) does not fail
 * the upload; a link that stays silent is noticed within the bound, as CONNECTION_LOST.
 */
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {createServer, connect as tcpConnect, type Server, type Socket} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Readable} from 'node:stream'

import type {SFTPWrapper} from 'ssh2'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {connect} from '../../src/transport/connect.js'
import {sftpCall} from '../../src/transport/sftp-call.js'
import {uploadResumable} from '../../src/transport/sftp-upload.js'
import {resolveSshTarget} from '../../src/transport/ssh-target.js'
import {type JumpLab, startJumpLab} from '../support/jump-lab.js'

const MiB = 2 ** 20
let lab: JumpLab
let home: string
let relay: Relay

/** A TCP relay to the gateway's sshd that can stop carrying bytes, both ways, and start again. */
interface Relay {
  port: number
  silent: boolean
  server: Server
  pairs: Array<[Socket, Socket]>
}

function startRelay(to: number): Promise<Relay> {
  const relay: Relay = {port: 0, silent: false, server: createServer(), pairs: []}
  relay.server.on('connection', (laptop) => {
    const sshd = tcpConnect(to, '127.0.0.1')
    relay.pairs.push([laptop, sshd])
    const carry = (from: Socket, into: Socket) => {
      let held: Buffer[] = []
      from.on('data', (chunk: Buffer) => {
        if (relay.silent) held.push(chunk)
        else into.write(chunk)
      })
      // What was held while silent goes on when the link comes back, in order.
      const flush = setInterval(() => {
        if (!relay.silent && held.length > 0) {
          for (const chunk of held) into.write(chunk)
          held = []
        }
      }, 100)
      from.on('close', () => {
        clearInterval(flush)
        into.destroy()
      })
      from.on('error', () => into.destroy())
    }
    carry(laptop, sshd)
    carry(sshd, laptop)
  })
  return new Promise((resolve) =>
    relay.server.listen(0, '127.0.0.1', () => {
      relay.port = (relay.server.address() as {port: number}).port
      resolve(relay)
    }),
  )
}

beforeAll(async () => {
  lab = await startJumpLab()
  relay = await startRelay(lab.gw1Port)
  home = mkdtempSync(join(tmpdir(), 'stall-laptop-'))
  mkdirSync(join(home, '.ssh'), {mode: 0o700})
  // The relay's port, under the gateway's own name in known_hosts.
  writeFileSync(join(home, '.ssh', 'config'), `Host gw1\n  HostName 127.0.0.1\n  Port ${relay.port}\n  HostKeyAlias [127.0.0.1]:${lab.gw1Port}\n  User root\n  IdentityFile ${lab.clientKey}\n`)
  writeFileSync(join(home, '.ssh', 'known_hosts'), lab.knownHosts)
}, 120_000)

afterAll(async () => {
  relay?.server.close()
  for (const [a, b] of relay?.pairs ?? []) {
    a.destroy()
    b.destroy()
  }
  await lab?.stop()
  if (home) rmSync(home, {recursive: true, force: true})
})

/** 32 MiB of zeros that runs `at4MiB` (awaited) once 4 MiB were read. */
function source(at4MiB: () => Promise<void> | void) {
  return {
    size: 32 * MiB,
    open: () => Readable.from((async function* () {
      for (let i = 0; i < 32; i++) {
        if (i === 4) await at4MiB()
        yield Buffer.alloc(MiB)
      }
    })()),
  }
}

const remoteHashes = () => Promise.reject(new Error('a fresh upload asks for no hashes'))

async function upload(name: string, at4MiB: () => Promise<void> | void) {
  const conn = await connect({target: resolveSshTarget('gw1', {home}), confirmNewHostKey: async () => false})
  try {
    const channels: SFTPWrapper[] = []
    for (let i = 0; i < 2; i++) channels.push(await sftpCall<SFTPWrapper>((cb) => conn.client.sftp(cb)))
    return await uploadResumable({channels, partPath: join(lab.dir, `${name}.box.part`), source: source(at4MiB), remoteHashes})
  } finally {
    conn.close()
  }
}

describe('an upload over a link that goes silent', () => {
  it('rides out a stall shorter than the bound and finishes', async () => {
    const result = await upload('stall', () => {
      relay.silent = true
      setTimeout(() => (relay.silent = false), 25_000)
    })
    expect(result.size).toBe(32 * MiB)
  }, 120_000)

  it('is lost, as CONNECTION_LOST, within the bound when the link stays silent', async () => {
    let silentAt = 0
    const error = await upload('silent', () => {
      relay.silent = true
      silentAt = Date.now()
    }).catch((e: unknown) => e)
    const after = Date.now() - silentAt
    relay.silent = false
    expect(error).toMatchObject({code: 'CONNECTION_LOST', exitCode: 4, message: expect.stringMatching(/^The connection to the blade was lost during the upload, at \d+%/)})
    // Three keepalives of 15 s unanswered: not before the first is due, and not long after the bound.
    expect(after).toBeGreaterThan(15_000)
    expect(after).toBeLessThan(75_000)
    console.log(`silent link noticed after ${(after / 1000).toFixed(0)} s`)
  }, 150_000)
})
