import {rootCertificates} from 'node:tls'

import {Agent, request} from 'undici'

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

/**
 * One HTTP(S) request through undici, with the certificate checked against the system's CAs
 * plus `caPem`. A dispatcher of its own per request: a kept-alive connection the server has
 * quietly closed during a long upload would fail the next call with ECONNRESET, and requests
 * are few (at most 5 a second).
 */
export async function httpRequest(req: HttpRequest): Promise<HttpResponse> {
  const dispatcher = new Agent({
    connect: req.caPem ? {ca: [...rootCertificates, req.caPem]} : {},
    connectTimeout: req.timeoutMs,
    headersTimeout: req.timeoutMs,
    bodyTimeout: req.timeoutMs,
    pipelining: 0,
  })
  try {
    const response = await request(req.url, {method: req.method, headers: req.headers, body: req.body, signal: req.signal, dispatcher})
    return {status: response.statusCode, body: await response.body.text()}
  } catch (error) {
    if (req.signal?.aborted) throw req.signal.reason
    throw noResponse(error as Error & {code?: string; cause?: unknown}, req.timeoutMs)
  } finally {
    await dispatcher.destroy().catch(() => undefined)
  }
}

/** undici's error, or the socket's or TLS's under it, with the code that says which. */
function noResponse(error: Error & {code?: string; cause?: unknown}, timeoutMs: number): NoResponseError {
  const inner = error.cause instanceof Error ? (error.cause as Error & {code?: string}) : error
  if (/^UND_ERR_(CONNECT|HEADERS|BODY)_TIMEOUT$/.test(error.code ?? '')) {
    return new NoResponseError(`no answer in ${timeoutMs / 1000} s`, 'ETIMEDOUT', {cause: error})
  }
  return new NoResponseError(inner.message, inner.code ?? error.code, {cause: error})
}
