import {mkdir, mkdtemp, readFile, rm} from 'node:fs/promises'
import {createServer, type Server} from 'node:https'
import type {AddressInfo} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {httpRequest, NoResponseError} from '../../../src/cloud/http-request.js'
import {SakuraArchiveClient} from '../../../src/cloud/sakura-client.js'
import {Secret} from '../../../src/cloud/secret.js'
import {DEFAULT_SETTINGS} from '../../../src/cloud/settings.js'
import {makePki, type Pki} from '../../support/proftpd.js'

// HTTPS as the cloud client speaks it (undici), against servers with certificates from a test
// CA made with openssl: one for 127.0.0.1, one for another name, and one that never answers.
let dir: string
let pki: Pki
const servers: Server[] = []

async function serve(certName: string, answer: boolean): Promise<string> {
  const own = await mkdtemp(join(dir, 'pki-'))
  const p = await makePki(own, certName, join(dir, 'ca'))
  const server = createServer({cert: await readFile(p.certFile), key: await readFile(p.keyFile)}, (req, res) => {
    if (answer) res.writeHead(200, {'Content-Type': 'application/json'}).end(JSON.stringify({method: req.method, url: req.url}))
  })
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `https://127.0.0.1:${(server.address() as AddressInfo).port}`
}

let good: string
let otherName: string
let silent: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shien-https-'))
  await mkdir(join(dir, 'ca'))
  pki = await makePki(join(dir, 'ca'), '127.0.0.1')
  ;[good, otherName, silent] = await Promise.all([serve('127.0.0.1', true), serve('api.example', true), serve('127.0.0.1', false)])
})

afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections()
    server.close()
  }
  await rm(dir, {recursive: true, force: true})
})

const get = (url: string, more: {caPem?: string; timeoutMs?: number; signal?: AbortSignal} = {}) =>
  httpRequest({method: 'GET', url: new URL('/cloud/zone/archive', url), headers: {}, timeoutMs: 5000, ...more})

describe('HTTPS requests of the cloud client', () => {
  it('trusts a server whose certificate the CA given vouches for, on top of the system CAs', async () => {
    expect(await get(good, {caPem: pki.caPem})).toEqual({status: 200, body: JSON.stringify({method: 'GET', url: '/cloud/zone/archive'})})
  })

  it('refuses the same server without that CA, and a certificate for another name even with it', async () => {
    const untrusted = await get(good).catch((e: unknown) => e)
    expect(untrusted).toBeInstanceOf(NoResponseError)
    expect(untrusted).toMatchObject({code: expect.stringMatching(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED/)})
    const wrongName = await get(otherName, {caPem: pki.caPem}).catch((e: unknown) => e)
    expect(wrongName).toMatchObject({code: 'ERR_TLS_CERT_ALTNAME_INVALID', message: expect.stringMatching(/127\.0\.0\.1 is not in the cert's list/)})
  })

  it('gives up on a server that does not answer, and an abort is the abort', async () => {
    const timedOut = await get(silent, {caPem: pki.caPem, timeoutMs: 300}).catch((e: unknown) => e)
    expect(timedOut).toMatchObject({code: 'ETIMEDOUT', message: 'no answer in 0.3 s'})
    const abort = new AbortController()
    setTimeout(() => abort.abort(new Error('cancelled')), 100)
    await expect(get(silent, {caPem: pki.caPem, signal: abort.signal})).rejects.toThrow('cancelled')
  })

  it('makes a refused certificate CLOUD_TLS, asked once: retrying cannot make it trusted', async () => {
    let requests = 0
    const api = new SakuraArchiveClient({
      zone: 'is1a',
      credentials: {token: 'tok', secret: new Secret('sec'), origin: 'test'},
      settings: {...DEFAULT_SETTINGS, apiRoot: `${otherName}/cloud/zone`, caPem: pki.caPem},
      clock: {now: () => 0, sleep: async () => void requests++},
    })
    await expect(api.get('113300000001')).rejects.toMatchObject({code: 'CLOUD_TLS', exitCode: 4, message: expect.stringMatching(/^Cannot reach Sakura Cloud at https:\/\/127\.0\.0\.1:\d+: .*\(ERR_TLS_CERT_ALTNAME_INVALID\)\.$/)})
    expect(requests).toBe(0)
  })
})
