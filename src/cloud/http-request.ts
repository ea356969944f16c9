import http from 'node:http'
import https from 'node:https'
import {rootCertificates} from 'node:tls'

export interface HttpRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE'
  url: URL
  headers: Record<string, string>
  body?: string
  /** Extra trusted CA certificates (PEM), added to the system's: never a way to skip checks. */
  caPem?: string
  signal?: AbortSignal
  timeoutMs: number
}

export interface HttpResponse {
  status: number
  body: string
}

/** Why a request got no HTTP answer at all (DNS, refused, TLS verification, timeout). */
export class NoResponseError extends Error {
  constructor(
    message: string,
    readonly code?: string,
    options?: {cause?: unknown},
  ) {
    super(message, options)
    this.name = 'NoResponseError'
  }
}

/** One HTTP(S) request with the certificate checked against the system's CAs plus `caPem`. */
export function httpRequest(req: HttpRequest): Promise<HttpResponse> {
  const secure = req.url.protocol === 'https:'
  // A fresh connection per request: a kept-alive one the server has quietly closed during a
  // long upload would fail the next call with ECONNRESET. Requests are few (at most 5 a second).
  const options: https.RequestOptions = {method: req.method, headers: req.headers, signal: req.signal, timeout: req.timeoutMs, agent: false}
  if (secure && req.caPem) options.ca = [...rootCertificates, req.caPem]
  return new Promise((resolve, reject) => {
    const request = (secure ? https : http).request(req.url, options, (response) => {
      const chunks: Buffer[] = []
      response.on('data', (chunk: Buffer) => chunks.push(chunk))
      response.on('error', (error) => reject(wrap(error)))
      response.on('end', () => resolve({status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8')}))
    })
    request.on('timeout', () => request.destroy(Object.assign(new Error(`no answer in ${req.timeoutMs / 1000} s`), {code: 'ETIMEDOUT'})))
    request.on('error', (error) => reject(req.signal?.aborted ? req.signal.reason : wrap(error)))
    request.end(req.body)
  })
}

function wrap(error: Error & {code?: string}): NoResponseError {
  return new NoResponseError(error.message, error.code, {cause: error})
}
