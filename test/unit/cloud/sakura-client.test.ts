import {createServer, type IncomingMessage, type Server} from 'node:http'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import type {Clock} from '../../../src/cloud/rate-limit.js'
import {SakuraArchiveClient} from '../../../src/cloud/sakura-client.js'
import {Secret} from '../../../src/cloud/secret.js'
import {DEFAULT_SETTINGS} from '../../../src/cloud/settings.js'

// The client against a scripted HTTP server, with a clock that records the waits instead.
type Answer = [number, string, number?]
let server: Server
let root: string
let answers: Answer[] = []
const seen: Array<{method?: string; url?: string; headers: IncomingMessage['headers']; body: string}> = []

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => (body += c.toString()))
    req.on('end', () => {
      seen.push({method: req.method, url: req.url, headers: req.headers, body})
      const [status, text, delayMs] = answers.shift() ?? [500, 'no answer scripted']
      setTimeout(() => res.writeHead(status, {'Content-Type': 'application/json'}).end(text), delayMs ?? 0)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  root = `http://127.0.0.1:${(server.address() as {port: number}).port}/cloud/zone`
})

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

function client(script: Answer[], apiRoot = root) {
  answers = script
  seen.length = 0
  const waits: number[] = []
  const clock: Clock = {now: () => waits.reduce((a, b) => a + b, 0), sleep: async (ms) => void waits.push(ms)}
  const api = new SakuraArchiveClient({
    zone: 'is1a',
    credentials: {token: 'tok', secret: new Secret('sec'), origin: 'test'},
    settings: {...DEFAULT_SETTINGS, apiRoot},
    clock,
  })
  return {api, waits}
}

const err = (status: string, code: string, msg: string) => JSON.stringify({is_fatal: true, serial: 'abc', status, error_code: code, error_msg: msg})
const archive = {ID: 113300000001, Name: 'os101', Availability: 'uploading', SizeMB: 20480}
const ftp = {HostName: 'sac-is1a-ssl.sakura.ad.jp', IPAddress: '192.0.2.1', User: 'sac0001', Password: 'ftp-pass'}

describe('SakuraArchiveClient', () => {
  it('creates a blank archive with Basic auth and the API\'s headers, and hides the FTP password', async () => {
    const {api} = client([[201, JSON.stringify({is_ok: true, Success: true, Archive: archive, FTPServer: ftp})]])
    const created = await api.createBlank({name: 'os101', description: 'd', tags: ['shien'], sizeMB: 20480})
    expect(created.archive).toEqual({id: '113300000001', name: 'os101', availability: 'uploading', sizeMB: 20480})
    expect(created.ftp).toMatchObject({hostName: 'sac-is1a-ssl.sakura.ad.jp', ipAddress: '192.0.2.1', user: 'sac0001'})
    expect(created.ftp.password.reveal()).toBe('ftp-pass')
    expect(JSON.stringify(created)).not.toContain('ftp-pass')
    const [request] = seen
    expect(request).toMatchObject({method: 'POST', url: '/cloud/zone/is1a/api/cloud/1.1/archive'})
    expect(request.headers).toMatchObject({
      authorization: `Basic ${Buffer.from('tok:sec').toString('base64')}`,
      'content-type': 'application/json',
      'x-requested-with': 'XMLHttpRequest',
      'x-sakura-bigint-as-int': '1',
    })
    expect(JSON.parse(request.body)).toEqual({Archive: {Name: 'os101', Description: 'd', Tags: ['shien'], SizeMB: 20480}})
  })

  it('speaks the archive FTP calls: PUT .../ftp with ChangePassword, DELETE .../ftp, GET and DELETE', async () => {
    const {api} = client([
      [200, JSON.stringify({FTPServer: {...ftp, Password: 'new'}, Success: true, is_ok: true})],
      [200, JSON.stringify({Success: true, is_ok: true})],
      [200, JSON.stringify({Archive: {...archive, ID: '113300000001', Availability: 'available'}, is_ok: true})],
      [204, ''],
    ])
    expect((await api.reopenFtp('113300000001')).password.reveal()).toBe('new')
    await api.closeFtp('113300000001')
    expect((await api.get('113300000001')).availability).toBe('available')
    await api.delete('113300000001')
    expect(seen.map((r) => `${r.method} ${r.url?.replace(/^.*1\.1/, '')} ${r.body}`)).toEqual([
      'PUT /archive/113300000001/ftp {"ChangePassword":true}',
      'DELETE /archive/113300000001/ftp ',
      'GET /archive/113300000001 ',
      'DELETE /archive/113300000001 ',
    ])
  })

  it('retries 423 and 503 with waits of 1, 2, 4 ... 64 s, 10 tries in all', async () => {
    const busy: Answer = [503, err('503 ServiceUnavailable', 'service_unavailable', 'メンテナンス中')]
    const {api, waits} = client(Array.from({length: 12}, (_, i) => (i % 2 ? busy : [423, err('423 Locked', 'locked', 'locked')])))
    await expect(api.get('1')).rejects.toMatchObject({code: 'CLOUD_BUSY', exitCode: 5})
    expect(seen).toHaveLength(10)
    expect(waits.filter((w) => w >= 1000)).toEqual([1000, 2000, 4000, 8000, 16000, 32000, 64000, 64000, 64000])
  })

  it('stops retrying once an answer comes', async () => {
    const {api, waits} = client([[503, 'Service Unavailable'], [423, '{}'], [200, JSON.stringify({Archive: archive})]])
    expect((await api.get('113300000001')).id).toBe('113300000001')
    expect(waits.filter((w) => w >= 1000)).toEqual([1000, 2000])
  })

  it('shows other errors with error_code and error_msg, or the plain text', async () => {
    const {api} = client([[404, err('404 NotFound', '404', 'not found')], [500, 'Internal <b>Server</b> Error'], [401, err('401 Unauthorized', 'unauthorized', 'bad key')]])
    await expect(api.get('9')).rejects.toThrow('Sakura Cloud (is1a) answered 404 404 to GET /archive/9: not found.')
    await expect(api.get('9')).rejects.toThrow('Sakura Cloud (is1a) answered 500 to GET /archive/9: Internal Server Error.')
    await expect(api.get('9')).rejects.toMatchObject({code: 'CLOUD_AUTH', exitCode: 6, message: expect.stringContaining('401 unauthorized to GET /archive/9: bad key')})
  })

  it('lets a POST under way finish when aborted (so its archive is known), but not a GET', async () => {
    const {api} = client([[201, JSON.stringify({Archive: archive, FTPServer: ftp}), 200], [200, JSON.stringify({Archive: archive}), 200]])
    const abort = new AbortController()
    setTimeout(() => abort.abort(new Error('interrupted')), 50)
    const created = await api.createBlank({name: 'os101', description: '', tags: [], sizeMB: 20480}, abort.signal)
    expect(created.archive.id).toBe('113300000001')
    const late = new AbortController()
    setTimeout(() => late.abort(new Error('interrupted')), 50)
    await expect(api.get('113300000001', late.signal)).rejects.toThrow('interrupted')
  })

  it('retries a lost connection, except for a POST, then says the API cannot be reached', async () => {
    const {api, waits} = client([], 'http://127.0.0.1:1/cloud/zone')
    const unreachable = {code: 'CLOUD_UNREACHABLE', exitCode: 4, message: expect.stringMatching(/Cannot reach Sakura Cloud at http:\/\/127\.0\.0\.1:1: .*ECONNREFUSED/)}
    await expect(api.get('1')).rejects.toMatchObject(unreachable)
    expect(waits.filter((w) => w >= 1000)).toHaveLength(9)
    const before = waits.length
    await expect(api.createBlank({name: 'n', description: '', tags: [], sizeMB: 20480})).rejects.toMatchObject(unreachable)
    expect(waits.slice(before)).toEqual([])
  })
})
