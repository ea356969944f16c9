import {randomBytes} from 'node:crypto'
import {readdir, readFile, rm, stat} from 'node:fs/promises'
import {createServer, type Server} from 'node:https'
import type {IncomingMessage, ServerResponse} from 'node:http'
import {join} from 'node:path'

import type {Proftpd} from './proftpd.js'

/**
 * A fake of Sakura Cloud's IaaS API 1.1 archive calls, over HTTPS with the test CA's
 * certificate, following the published shapes: Basic auth, `{"Archive":...,"FTPServer":...}`
 * answers, error bodies `{"is_fatal","serial","status","error_code","error_msg"}`, IDs as
 * numbers only with `X-Sakura-Bigint-As-Int: 1`. Its FTP accounts are real ProFTPD accounts;
 * ChangePassword really changes the password. Faults are injected through `faults`.
 */
export interface FakeSakura {
  /** What SAKURACLOUD_API_ROOT_URL is set to: `https://127.0.0.1:PORT/cloud/zone`. */
  apiRoot: string
  requests: RecordedRequest[]
  archives: Map<string, FakeArchive>
  faults: Faults
  /** Every FTP password handed out so far (none may ever show up in shien's output). */
  issuedPasswords: string[]
  /** Answers the next `times` matching requests with `status` (and `body`, JSON or text). */
  failNext(match: {method: string; path: RegExp}, status: number, times: number, body?: string): void
  /** Points FTPServer answers at another ProFTPD (e.g. one with a wrong certificate). */
  useFtpd(ftpd: Proftpd): void
  reset(): Promise<void>
  stop(): Promise<void>
}

export interface RecordedRequest {
  method: string
  /** Path under the zone's API base, e.g. `/archive/113300000001/ftp`. */
  path: string
  zone: string
  status: number
  at: number
  headers: {contentType?: string; requestedWith?: string; bigintAsInt?: string}
  body?: unknown
}

export interface FakeArchive {
  id: number
  zone: string
  name: string
  description: string
  tags: string[]
  sizeMB: number
  availability: 'uploading' | 'migrating' | 'available' | 'failed'
  ftp?: {user: string; password: string}
  /** GETs left in `migrating` after FTP was closed. */
  migratingGets: number
  deleted: boolean
  createdAt: string
}

export interface Faults {
  /** Hand out an FTP password that ProFTPD does not accept. */
  wrongFtpPassword: boolean
  /** Put FTP accounts in ProFTPD's rate-limited group (so a test can act mid-transfer). */
  slowFtp: boolean
  /** After FTP closes: check the stored image (auto), or end `failed`, or never finish. */
  availability: 'auto' | 'failed' | 'stuck'
}

type Scripted = {method: string; path: RegExp; status: number; times: number; body?: string}

const noFaults = (): Faults => ({wrongFtpPassword: false, slowFtp: false, availability: 'auto'})
const BASE = /^\/cloud\/zone\/([a-z0-9]+)\/api\/cloud\/1\.1(\/.*)$/
const STATUS_TEXT: Record<number, string> = {400: 'BadRequest', 401: 'Unauthorized', 404: 'NotFound', 405: 'MethodNotAllowed', 409: 'Conflict', 423: 'Locked', 503: 'ServiceUnavailable'}

export async function startFakeSakura(opts: {ftpd: Proftpd; token: string; secret: string}): Promise<FakeSakura> {
  const [cert, key] = await Promise.all([readFile(opts.ftpd.certFile), readFile(opts.ftpd.keyFile)])
  const state = {ftpd: opts.ftpd, nextId: 113300000001, scripted: [] as Scripted[]}
  const fake: FakeSakura = {
    apiRoot: '',
    requests: [],
    archives: new Map(),
    faults: noFaults(),
    issuedPasswords: [],
    failNext: (match, status, times, body) => state.scripted.push({...match, status, times, body}),
    useFtpd: (ftpd) => void (state.ftpd = ftpd),
    reset: async () => {
      fake.requests.length = 0
      state.scripted.length = 0
      fake.faults = noFaults()
      state.ftpd = opts.ftpd
      await syncAccounts(fake, state.ftpd)
    },
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  }
  const server: Server = createServer({cert, key}, (req, res) => {
    void handle(req, res, fake, state, opts).catch((error: Error) => reply(res, 500, JSON.stringify(errorBody(500, 'internal', error.message))))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  fake.apiRoot = `https://127.0.0.1:${(server.address() as {port: number}).port}/cloud/zone`
  return fake
}

type State = {ftpd: Proftpd; nextId: number; scripted: Scripted[]}

async function handle(req: IncomingMessage, res: ServerResponse, fake: FakeSakura, state: State, opts: {token: string; secret: string}) {
  const raw = await readBody(req)
  const match = BASE.exec(new URL(req.url ?? '/', 'https://x').pathname)
  const method = req.method ?? 'GET'
  const record: RecordedRequest = {
    method,
    path: match?.[2] ?? req.url ?? '',
    zone: match?.[1] ?? '',
    status: 0,
    at: performance.now(),
    headers: {contentType: req.headers['content-type'], requestedWith: header(req, 'x-requested-with'), bigintAsInt: header(req, 'x-sakura-bigint-as-int')},
    body: raw ? safeJson(raw) : undefined,
  }
  fake.requests.push(record)
  const send = (status: number, body: string, type = 'application/json; charset=UTF-8') => {
    record.status = status
    reply(res, status, body, type)
  }
  const expected = `Basic ${Buffer.from(`${opts.token}:${opts.secret}`).toString('base64')}`
  if (req.headers.authorization !== expected) return send(401, JSON.stringify(errorBody(401, 'unauthorized', '認証に失敗しました。 (authentication failed)')))
  const scripted = state.scripted.find((s) => s.method === method && s.path.test(record.path) && s.times > 0)
  if (scripted) {
    scripted.times--
    const body = scripted.body ?? JSON.stringify(errorBody(scripted.status, scripted.status === 423 ? 'resource_is_locked' : 'service_unavailable', 'busy, try later'))
    return send(scripted.status, body, body.startsWith('{') ? undefined : 'text/html')
  }
  if (!match) return send(404, JSON.stringify(errorBody(404, 'not_found', 'no such API')))
  const ids = header(req, 'x-sakura-bigint-as-int') === '1'
  const [status, body] = await route(method, record.path, match[1], record.body, fake, state)
  send(status, JSON.stringify(body, (k, v) => (k === 'ID' && !ids ? String(v) : v)))
}

async function route(method: string, path: string, zone: string, body: unknown, fake: FakeSakura, state: State): Promise<[number, unknown]> {
  if (path === '/archive' && method === 'POST') return create(zone, body, fake, state)
  const m = /^\/archive\/([0-9]+)(\/ftp)?$/.exec(path)
  const archive = m ? fake.archives.get(m[1]) : undefined
  if (!m || !archive || archive.deleted || archive.zone !== zone) return failure(404, 'not_found', '対象が見つかりません。')
  const ok = {Success: true, is_ok: true}
  if (!m[2] && method === 'GET') return [200, {Archive: await view(archive, fake, state), is_ok: true}]
  if (!m[2] && method === 'DELETE') {
    archive.deleted = true
    archive.ftp = undefined
    await syncAccounts(fake, state.ftpd)
    await rm(state.ftpd.homeOf(ftpUser(archive)), {recursive: true, force: true})
    return [200, {Archive: await view(archive, fake, state), ...ok}]
  }
  if (m[2] && method === 'PUT') {
    if (typeof (body as {ChangePassword?: unknown})?.ChangePassword !== 'boolean') return failure(400, 'bad_request', 'ChangePassword is required')
    if (archive.availability !== 'uploading') return failure(409, 'conflict', 'FTP cannot be opened now')
    if ((body as {ChangePassword: boolean}).ChangePassword || !archive.ftp) archive.ftp = {user: ftpUser(archive), password: newPassword(fake)}
    await syncAccounts(fake, state.ftpd)
    return [200, {FTPServer: ftpServer(archive, fake, state), ...ok}]
  }
  if (m[2] && method === 'DELETE') {
    archive.ftp = undefined
    archive.availability = 'migrating'
    await syncAccounts(fake, state.ftpd)
    return [200, ok]
  }
  return failure(405, 'method_not_allowed', `${method} is not allowed here`)
}

async function create(zone: string, body: unknown, fake: FakeSakura, state: State): Promise<[number, unknown]> {
  const a = (body as {Archive?: {Name?: unknown; Description?: unknown; Tags?: unknown; SizeMB?: unknown}})?.Archive
  const sizes = [20, 40, 60, 80, 100, 250, 500, 750, 1024].map((g) => g * 1024)
  if (!a || typeof a.Name !== 'string' || !sizes.includes(a.SizeMB as number)) {
    return failure(400, 'bad_request', 'Archive.Name and a valid Archive.SizeMB are required')
  }
  const archive: FakeArchive = {
    id: state.nextId++,
    zone,
    name: a.Name,
    description: String(a.Description ?? ''),
    tags: Array.isArray(a.Tags) ? a.Tags.map(String) : [],
    sizeMB: a.SizeMB as number,
    availability: 'uploading',
    migratingGets: 2,
    deleted: false,
    createdAt: new Date().toISOString().replace(/\.\d+Z$/, '+09:00'),
  }
  archive.ftp = {user: ftpUser(archive), password: newPassword(fake)}
  fake.archives.set(String(archive.id), archive)
  await syncAccounts(fake, state.ftpd)
  return [201, {Archive: await view(archive, fake, state), FTPServer: ftpServer(archive, fake, state), Success: true, is_ok: true}]
}

async function view(archive: FakeArchive, fake: FakeSakura, state: State) {
  if (archive.availability === 'migrating' && fake.faults.availability !== 'stuck' && --archive.migratingGets <= 0) {
    archive.availability = fake.faults.availability === 'failed' ? 'failed' : await checkStored(archive, state.ftpd)
  }
  const a = archive
  const migrated = a.availability === 'available' ? a.sizeMB : 0
  return {
    ...{ID: a.id, Name: a.name, Description: a.description, Scope: 'user', Availability: a.availability, SizeMB: a.sizeMB, MigratedMB: migrated},
    ...{Tags: a.tags, Icon: null, Plan: {ID: 2, StorageClass: 'iscsi9999', Name: '標準プラン'}, SourceDisk: null, SourceArchive: null, BundleInfo: null},
    Storage: {ID: 2200000001, Class: 'iscsi9999', Name: 'sac-is1a-arc-st01', Zone: {ID: 31001, Name: a.zone}},
    CreatedAt: a.createdAt,
    ModifiedAt: a.createdAt,
  }
}

/** Like Sakura Cloud: one non-empty file that fits the archive, or the archive fails. */
async function checkStored(archive: FakeArchive, ftpd: Proftpd): Promise<'available' | 'failed'> {
  const home = ftpd.homeOf(ftpUser(archive))
  const files = await readdir(home).catch(() => [] as string[])
  if (files.length !== 1) return 'failed'
  const size = (await stat(join(home, files[0]))).size
  return size > 0 && size <= archive.sizeMB * 2 ** 20 ? 'available' : 'failed'
}

function ftpServer(archive: FakeArchive, fake: FakeSakura, state: State) {
  const password = fake.faults.wrongFtpPassword ? `wrong-${randomBytes(6).toString('hex')}` : archive.ftp!.password
  return {HostName: state.ftpd.host, IPAddress: state.ftpd.host, User: archive.ftp!.user, Password: password}
}

async function syncAccounts(fake: FakeSakura, ftpd: Proftpd): Promise<void> {
  const open = [...fake.archives.values()].filter((a) => a.ftp && !a.deleted)
  await ftpd.setAccounts(open.map((a) => ({user: a.ftp!.user, password: a.ftp!.password, slow: fake.faults.slowFtp})))
}

const ftpUser = (archive: FakeArchive) => `sac${archive.id}`

function newPassword(fake: FakeSakura): string {
  const password = randomBytes(12).toString('base64url')
  fake.issuedPasswords.push(password)
  return password
}

function errorBody(status: number, code: string, message: string) {
  const serial = randomBytes(16).toString('hex')
  return {is_fatal: true, serial, status: `${status} ${STATUS_TEXT[status] ?? 'Error'}`, error_code: code, error_msg: message}
}

const failure = (status: number, code: string, message: string): [number, unknown] => [status, errorBody(status, code, message)]

function reply(res: ServerResponse, status: number, body: string, type = 'application/json; charset=UTF-8') {
  res.writeHead(status, {'Content-Type': type, 'Content-Length': Buffer.byteLength(body)}).end(body)
}

const header = (req: IncomingMessage, name: string) => req.headers[name] as string | undefined

/** The environment that points shien at this fake and ProFTPD (fast polls and backoff). */
export function cloudTestEnv(fake: FakeSakura, ftpd: Proftpd, creds: {token: string; secret: string}): Record<string, string> {
  return {
    SAKURACLOUD_ACCESS_TOKEN: creds.token,
    SAKURACLOUD_ACCESS_TOKEN_SECRET: creds.secret,
    SAKURACLOUD_API_ROOT_URL: fake.apiRoot,
    SHIEN_CLOUD_CA_FILE: ftpd.caFile,
    SHIEN_CLOUD_FTP_PORT: String(ftpd.port),
    SHIEN_CLOUD_POLL_MS: '50',
    SHIEN_CLOUD_BACKOFF_MS: '10',
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return text // recorded as it came
  }
}
