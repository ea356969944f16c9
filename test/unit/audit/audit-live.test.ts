/**
 * auditLive end to end over loopback, with libvirt replaced by a fake that forwards guest port
 * 22 to an ssh2 server (password "vagrant" for vagrant) and guest port 80 to a listening socket.
 */
import {createServer, type Server} from 'node:net'
import {readFile, rm} from 'node:fs/promises'
import ssh2 from 'ssh2'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {DEFAULT_AUDIT_CONFIG} from '../../../src/audit/config.js'
import {auditLive} from '../../../src/audit/live/audit-live.js'
import type {LiveHypervisor} from '../../../src/audit/live/domains.js'
import {makeKeyPair} from '../../support/guest-image.js'

let sshd: ssh2.Server
let web: Server
let hostKeyDir: string
const ports = {ssh: 0, web: 0}

beforeAll(async () => {
  const host = await makeKeyPair('ed25519', 'host')
  hostKeyDir = host.dir
  sshd = new ssh2.Server({hostKeys: [await readFile(host.privatePath)]}, (client) => {
    client.on('authentication', (ctx) => (ctx.method === 'password' && ctx.username === 'vagrant' && ctx.password === 'vagrant' ? ctx.accept() : ctx.reject(['publickey', 'password'])))
    client.on('ready', () => client.end())
    client.on('error', () => undefined)
  })
  web = createServer(() => undefined)
  await new Promise<void>((r) => sshd.listen(0, '127.0.0.1', r))
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r))
  ports.ssh = (sshd.address() as {port: number}).port
  ports.web = (web.address() as {port: number}).port
})

afterAll(async () => {
  await new Promise((r) => sshd.close(r))
  await new Promise((r) => web.close(r))
  await rm(hostKeyDir, {recursive: true, force: true})
})

const xml = (fwds: string) => `<domain xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><qemu:commandline><qemu:arg value='user,id=n${fwds}'/></qemu:commandline></domain>`

describe('auditLive', () => {
  it('reports logins, open ports outside the allowed ones, and domains it cannot reach', async () => {
    const hv: LiveHypervisor = {
      listRunning: async () => ['e195702-04', 'lonely'],
      dumpXml: async (name) => (name === 'lonely' ? xml('') : xml(`,hostfwd=tcp:127.0.0.1:${ports.ssh}-:22,hostfwd=tcp:127.0.0.1:${ports.web}-:80`)),
      addresses: async () => [],
    }
    const config = {...DEFAULT_AUDIT_CONFIG, live: {...DEFAULT_AUDIT_CONFIG.live, ports: [22, 80, 443], maxPasswordAttempts: 2}}
    const r = await auditLive({blade: {libvirtUri: 'test:///'}, config}, {hypervisor: hv})
    expect(r.findings.map((f) => `${f.domain} ${f.code} ${f.severity} ${f.user ?? ''}`)).toEqual([
      'e195702-04 live-weak-password high vagrant', 'e195702-04 live-open-port medium ', 'e195702-04 live-password-auth medium ',
    ])
    expect(r.domains).toEqual([
      expect.objectContaining({name: 'e195702-04', account: 'e195702', slot: '04', status: 'audited', ports: [{port: 22, state: 'open'}, {port: 80, state: 'open'}],
        ssh: {methods: ['publickey', 'password'], hostKey: expect.any(String)}, attempts: 2 + 1 + 2 + 2}),
      expect.objectContaining({name: 'lonely', status: 'unreachable', ports: [], attempts: 0, error: {code: 'AUDIT_NO_ENDPOINT', message: expect.any(String)}}),
    ])
    expect(r.summary).toMatchObject({high: 1, medium: 2, incomplete: 1, outcome: 'high'})
    expect(r.exitCode).toBe(10)
  })
})
