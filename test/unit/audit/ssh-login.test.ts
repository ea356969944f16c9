/**
 * tryLogins against an SSH server from ssh2 (the library's own server side, speaking the real
 * protocol), configured the way the audit meets sshd: a method list on `none`, a disconnect after
 * MaxAuthTries failures, keyboard-interactive for PAM.
 */
import {readFile, rm} from 'node:fs/promises'
import ssh2 from 'ssh2'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {VAGRANT_INSECURE_PRIVATE_KEYS} from '../../../src/audit/live/insecure-private-keys.js'
import {tryLogins, type LoginCredential} from '../../../src/audit/live/ssh-login.js'
import {VAGRANT_INSECURE_KEYS} from '../../../src/harden/insecure-keys.js'
import {makeKeyPair} from '../../support/guest-image.js'

const MAX_AUTH_TRIES = 3
const ED25519 = ssh2.utils.parseKey(`ssh-ed25519 ${VAGRANT_INSECURE_KEYS[1].blob}`) as ssh2.ParsedKey
let server: ssh2.Server
let port: number
let hostKeyDir: string
let connections = 0
/** Methods offered per user; `vagrant` takes the insecure ed25519 key, `root` the password "secret". */
const METHODS: Record<string, string[]> = {vagrant: ['publickey'], root: ['publickey', 'password'], kbd: ['keyboard-interactive']}

beforeAll(async () => {
  const host = await makeKeyPair('ed25519', 'host')
  hostKeyDir = host.dir
  server = new ssh2.Server({hostKeys: [await readFile(host.privatePath)]}, (client) => {
    connections++
    let failures = 0
    client.on('authentication', (ctx) => {
      const methods = METHODS[ctx.username] ?? ['publickey']
      const fail = () => {
        if (ctx.method !== 'none' && ++failures >= MAX_AUTH_TRIES) return client.end()
        ctx.reject(methods)
      }
      if (ctx.method === 'publickey' && methods.includes('publickey') && ctx.username === 'vagrant' && ctx.key.data.equals(ED25519.getPublicSSH())) {
        if (!ctx.signature) return ctx.accept()
        return ED25519.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) === true ? ctx.accept() : fail()
      }
      if (ctx.method === 'password' && methods.includes('password') && ctx.password === 'secret') return ctx.accept()
      if (ctx.method === 'keyboard-interactive' && methods.includes('keyboard-interactive')) {
        return ctx.prompt([{prompt: 'Password: ', echo: false}], (answers) => (answers[0] === 'secret' ? ctx.accept() : fail()))
      }
      fail()
    })
    client.on('ready', () => client.end())
    client.on('error', () => undefined)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  port = (server.address() as {port: number}).port
})

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve))
  await rm(hostKeyDir, {recursive: true, force: true})
})

const keys: LoginCredential[] = VAGRANT_INSECURE_PRIVATE_KEYS.map((k) => ({kind: 'key', keyType: k.type, key: k.pem}))
const passwords = (...ps: string[]): LoginCredential[] => ps.map((password) => ({kind: 'password', password, source: 'builtin'}))
const at = () => ({host: '127.0.0.1', port, via: 'forward' as const})
const o = {timeoutMs: 20_000}

describe('tryLogins', () => {
  it('finds the insecure key that works, and records the methods and host key', async () => {
    const r = await tryLogins(at(), 'vagrant', keys, o)
    expect(r).toMatchObject({methods: ['publickey'], tried: 2, accepted: {kind: 'key', keyType: 'ssh-ed25519'}})
    expect(r.hostKey).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/)
  })

  it('goes on on a new connection when the server drops it after MaxAuthTries failures', async () => {
    const before = connections
    const r = await tryLogins(at(), 'root', [...keys, ...passwords('a', 'b', 'c', 'd', 'secret', 'after')], o)
    expect(r).toMatchObject({tried: 7, accepted: {kind: 'password', password: 'secret'}})
    expect(connections - before).toBe(3)
  })

  it('answers keyboard-interactive prompts with the password when that is all sshd offers', async () => {
    expect(await tryLogins(at(), 'kbd', [...keys, ...passwords('x', 'secret')], o)).toMatchObject({methods: ['keyboard-interactive'], tried: 2, accepted: {password: 'secret'}})
  })

  it('tries no password where sshd takes none, and stops when everything failed', async () => {
    expect(await tryLogins(at(), 'vagrant', passwords('vagrant'), o)).toEqual({methods: ['publickey'], tried: 0, hostKey: expect.any(String)})
    const r = await tryLogins(at(), 'root', passwords('a', 'b', 'c', 'd'), o)
    expect([r.tried, r.accepted]).toEqual([4, undefined])
  })

  it('reports an sshd it cannot reach, without attempts', async () => {
    const r = await tryLogins({host: '127.0.0.1', port: 1, via: 'forward'}, 'root', passwords('x'), o)
    expect(r).toMatchObject({tried: 0, methods: [], error: expect.stringMatching(/ECONNREFUSED/)})
  })
})
