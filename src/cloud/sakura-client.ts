import {ShienError} from '../errors.js'
import {apiError} from './api-error.js'
import type {ArchiveApi, ArchiveInfo, FtpServerInfo, NewArchive} from './archive-api.js'
import {httpRequest, type HttpResponse, NoResponseError} from './http-request.js'
import {type Clock, RateLimiter, realClock} from './rate-limit.js'
import {type ApiCredentials, Secret} from './secret.js'
import {type CloudSettings, zoneApiBase} from './settings.js'

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE'

const SUCCESS = new Set([200, 201, 202, 204])
const RETRIED = new Set([423, 503])

export interface SakuraClientOptions {
  zone: string
  credentials: ApiCredentials
  settings: CloudSettings
  clock?: Clock
  /** Told before each wait after a 423, a 503 or no answer (status 0), for a note to the user. */
  onRetry?: (info: {request: string; status: number; waitMs: number; attempt: number}) => void
  requestTimeoutMs?: number
}

/**
 * Sakura Cloud's IaaS API 1.1 for archives in one zone: Basic auth with the API key, JSON,
 * at most 5 requests a second, and 423/503 retried with exponential backoff (1 s to 64 s,
 * 10 tries). Any other failure carries the API's error_code and error_msg.
 */
export class SakuraArchiveClient implements ArchiveApi {
  readonly zone: string
  private readonly limiter: RateLimiter
  private readonly clock: Clock

  constructor(private readonly opts: SakuraClientOptions) {
    this.zone = opts.zone
    this.clock = opts.clock ?? realClock
    this.limiter = new RateLimiter(5, 1000, this.clock)
  }

  async createBlank(archive: NewArchive, signal?: AbortSignal) {
    const body = {Archive: {Name: archive.name, Description: archive.description, Tags: archive.tags, SizeMB: archive.sizeMB}}
    const answer = await this.call<{Archive?: unknown; FTPServer?: unknown}>('POST', '/archive', body, signal)
    return {archive: toArchive(answer.Archive), ftp: toFtpServer(answer.FTPServer)}
  }

  async reopenFtp(id: string, signal?: AbortSignal): Promise<FtpServerInfo> {
    const answer = await this.call<{FTPServer?: unknown}>('PUT', `/archive/${checkId(id)}/ftp`, {ChangePassword: true}, signal)
    return toFtpServer(answer.FTPServer)
  }

  async closeFtp(id: string, signal?: AbortSignal): Promise<void> {
    await this.call('DELETE', `/archive/${checkId(id)}/ftp`, undefined, signal)
  }

  async get(id: string, signal?: AbortSignal): Promise<ArchiveInfo> {
    return toArchive((await this.call<{Archive?: unknown}>('GET', `/archive/${checkId(id)}`, undefined, signal)).Archive)
  }

  async delete(id: string, signal?: AbortSignal): Promise<void> {
    await this.call('DELETE', `/archive/${checkId(id)}`, undefined, signal)
  }

  private async call<T>(method: Method, path: string, body: unknown, signal?: AbortSignal): Promise<T> {
    const request = `${method} ${path}`
    for (let attempt = 1; ; attempt++) {
      await this.limiter.acquire(signal)
      const response = await this.send(method, path, body, signal)
      const lost = response instanceof ShienError
      if (!lost && SUCCESS.has(response.status)) return parseSuccess<T>(response, request)
      // 423 and 503 are retried; so is a lost connection (not a certificate problem), except
      // for a POST, which may have created an archive already.
      const retry = lost ? method !== 'POST' && response.code === 'CLOUD_UNREACHABLE' : RETRIED.has(response.status)
      if (retry && attempt < this.opts.settings.maxTries) {
        const base = this.opts.settings.backoffBaseMs
        const waitMs = Math.min(base * 2 ** (attempt - 1), base * 64)
        this.opts.onRetry?.({request, status: lost ? 0 : response.status, waitMs, attempt})
        await this.clock.sleep(waitMs, signal)
        continue
      }
      if (lost) throw response
      throw apiError(request, this.zone, response.status, response.body, attempt)
    }
  }

  /** The answer, or the error for no answer at all (aborts are thrown). */
  private async send(method: Method, path: string, body: unknown, signal?: AbortSignal): Promise<HttpResponse | ShienError> {
    const {credentials, settings} = this.opts
    const auth = Buffer.from(`${credentials.token}:${credentials.secret.reveal()}`).toString('base64')
    const url = new URL(zoneApiBase(settings, this.zone) + path)
    try {
      return await httpRequest({
        method,
        url,
        headers: {
          Authorization: `Basic ${auth}`,
          'Content-Type': 'application/json',
          'X-Requested-With': 'XMLHttpRequest',
          'X-Sakura-Bigint-As-Int': '1',
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        caPem: settings.caPem,
        // A POST under way is let finish: cut off, it could create an archive nobody knows
        // the ID of; finished, the push sees the abort and deletes what it created.
        signal: method === 'POST' ? undefined : signal,
        timeoutMs: this.opts.requestTimeoutMs ?? 60_000,
      })
    } catch (error) {
      if (signal?.aborted || !(error instanceof NoResponseError)) throw error
      return unreachable(url, error)
    }
  }
}

function unreachable(url: URL, error: NoResponseError): ShienError {
  const tls = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/.test(error.code ?? '')
  return new ShienError(`Cannot reach Sakura Cloud at ${url.origin}: ${error.message}${error.code ? ` (${error.code})` : ''}.`, {
    code: tls ? 'CLOUD_TLS' : 'CLOUD_UNREACHABLE',
    exit: 'connection',
    cause: error,
    suggestions: tls
      ? ['The server\'s certificate was not trusted for this name. If a proxy re-signs TLS, name its CA with --ca-file.']
      : ['Check the network, or SAKURACLOUD_API_ROOT_URL if you set it.'],
  })
}

function parseSuccess<T>(response: HttpResponse, request: string): T {
  if (response.status === 204 || response.body.trim() === '') return {} as T
  try {
    return JSON.parse(response.body) as T
  } catch (error) {
    throw new ShienError(`Sakura Cloud answered ${request} with something that is not JSON.`, {code: 'CLOUD_API', exit: 'remote', cause: error})
  }
}

function checkId(id: string): string {
  if (!/^[0-9]{1,20}$/.test(id)) throw new ShienError(`"${id}" is not a Sakura Cloud resource ID.`, {code: 'CLOUD_API', exit: 'remote'})
  return id
}

const malformed = (what: string) => new ShienError(`Sakura Cloud's answer has no usable ${what}.`, {code: 'CLOUD_API', exit: 'remote'})

function toArchive(value: unknown): ArchiveInfo {
  const a = value as {ID?: unknown; Name?: unknown; Availability?: unknown; SizeMB?: unknown} | undefined
  if (!a || (typeof a.ID !== 'number' && typeof a.ID !== 'string')) throw malformed('Archive')
  return {
    id: checkId(String(a.ID)),
    name: String(a.Name ?? ''),
    availability: String(a.Availability ?? ''),
    sizeMB: typeof a.SizeMB === 'number' ? a.SizeMB : undefined,
  }
}

function toFtpServer(value: unknown): FtpServerInfo {
  const f = value as {HostName?: unknown; IPAddress?: unknown; User?: unknown; Password?: unknown} | undefined
  if (!f || typeof f.HostName !== 'string' || !f.HostName || typeof f.User !== 'string' || typeof f.Password !== 'string') {
    throw malformed('FTPServer')
  }
  return {
    hostName: f.HostName,
    ipAddress: typeof f.IPAddress === 'string' ? f.IPAddress : undefined,
    user: f.User,
    password: new Secret(f.Password),
  }
}

/** A client that tells the user (through `note`) when Sakura Cloud is busy and it waits. */
export function notingClient(opts: Omit<SakuraClientOptions, 'onRetry'>, note: (message: string) => void): SakuraArchiveClient {
  return new SakuraArchiveClient({
    ...opts,
    onRetry: ({request, status, waitMs}) =>
      note(`${status ? `Sakura Cloud answered ${status} to` : 'No answer from Sakura Cloud to'} ${request}; trying again in ${(waitMs / 1000).toFixed(1)} s.`),
  })
}
