import {createReadStream} from 'node:fs'
import {pipeline, Transform, type TransformCallback} from 'node:stream'
import {rootCertificates} from 'node:tls'

import type {Client, FTPError as FTPErrorType} from 'basic-ftp'

import type {FtpServerInfo} from './archive-api.js'

export interface UploadTarget {
  server: FtpServerInfo
  port: number
  /** Extra trusted CA certificates (PEM), added to the system's. */
  caPem?: string
  remoteName: string
}

export interface UploadOutcome {
  bytes: number
  ms: number
  /** The server's closing reply, e.g. `226 Transfer complete`. */
  reply: string
}

/** Sends one file in one go; a failure says whether sending again could help. */
export type Uploader = (
  file: string,
  size: number,
  target: UploadTarget,
  opts: {signal?: AbortSignal; onBytes?: (bytes: number) => void},
) => Promise<UploadOutcome>

/** Why an upload failed, and whether a fresh password and a new connection may fix it. */
export class UploadError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly kind: 'login' | 'transfer' | 'tls' | 'refused' | 'local',
    options?: {cause?: unknown},
  ) {
    super(message, options)
    this.name = 'UploadError'
  }
}

/** Counts what flows from the file to the data connection and reports it now and then. */
class ByteCounter extends Transform {
  bytes = 0
  private last = 0

  constructor(private readonly onBytes?: (bytes: number) => void) {
    super()
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length
    const now = performance.now()
    if (now - this.last >= 200) {
      this.last = now
      this.onBytes?.(this.bytes)
    }
    done(null, chunk)
  }
}

/**
 * STOR over explicit FTPS with basic-ftp: the server certificate verified for the host name
 * (system CAs plus `caPem`), TLS 1.2 or 1.3, passive mode, and the data connection resuming
 * the control connection's TLS session as strict servers demand. Success means a 226 reply and
 * exactly `size` bytes sent (and stored, when the server answers SIZE).
 */
export const ftpsUpload: Uploader = async (file, size, target, opts) => {
  // basic-ftp is loaded by the one command that sends over FTP.
  const {Client, FTPError} = await import('basic-ftp')
  const client = new Client(30_000)
  const onAbort = () => client.close()
  opts.signal?.addEventListener('abort', onAbort, {once: true})
  const t0 = performance.now()
  let localError: Error | undefined
  try {
    opts.signal?.throwIfAborted()
    await client.access({
      host: target.server.hostName,
      port: target.port,
      user: target.server.user,
      password: target.server.password.reveal(),
      secure: true,
      secureOptions: {
        ca: target.caPem ? [...rootCertificates, target.caPem] : undefined,
        minVersion: 'TLSv1.2',
        maxVersion: 'TLSv1.3',
      },
    })
    const counter = new ByteCounter(opts.onBytes)
    // 1 MiB reads: fewer, larger writes into the TLS socket; memory stays a few MiB per upload.
    const reader = createReadStream(file, {highWaterMark: 1 << 20})
    // Only the file's own failures are local; a cut connection also tears the reader down.
    reader.on('error', (error: NodeJS.ErrnoException) => {
      if (error.syscall === 'open' || error.syscall === 'read') localError = error
    })
    const source = pipeline(reader, counter, () => undefined)
    const reply = await client.uploadFrom(source, target.remoteName)
    opts.onBytes?.(counter.bytes)
    await checkStored(client, target.remoteName, reply, counter.bytes, size)
    return {bytes: counter.bytes, ms: Math.round(performance.now() - t0), reply: reply.message.split('\n')[0]}
  } catch (error) {
    if (opts.signal?.aborted) throw opts.signal.reason
    throw classify(localError ?? error, localError !== undefined, FTPError)
  } finally {
    opts.signal?.removeEventListener('abort', onAbort)
    client.close()
  }
}

async function checkStored(client: Client, name: string, reply: {code: number; message: string}, sent: number, size: number) {
  if (reply.code !== 226) throw new UploadError(`the server ended the transfer with "${reply.message}", not 226`, true, 'transfer')
  if (sent !== size) throw new UploadError(`${sent} bytes were sent of ${size}`, true, 'transfer')
  // SIZE is optional in FTP; when the server has it, it must agree with what was sent.
  const answer = await client.sendIgnoringError(`SIZE ${name}`)
  const stored = answer.code === 213 ? Number.parseInt(answer.message.slice(4), 10) : Number.NaN
  if (answer.code === 213 && stored !== size) throw new UploadError(`the server stored ${stored} bytes of ${size}`, true, 'transfer')
}

const TLS_CODES = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|SELF_SIGNED|DEPTH_ZERO|HOSTNAME_MISMATCH)/

function classify(error: unknown, local: boolean, FTPError: typeof FTPErrorType): UploadError {
  const e = error as Error & {code?: string | number}
  if (local) return new UploadError(`cannot read the image: ${e.message}`, false, 'local', {cause: e})
  if (e instanceof FTPError) {
    const code = e.code
    if (code === 530) return new UploadError(`the FTP server refused the login (${e.message})`, true, 'login', {cause: e})
    // 4xx replies are transient by definition; 5xx ones (no space, not allowed) are final.
    return new UploadError(`the FTP server answered "${e.message}"`, code >= 400 && code < 500, code < 500 ? 'transfer' : 'refused', {cause: e})
  }
  if (typeof e.code === 'string' && TLS_CODES.test(e.code)) {
    return new UploadError(`the FTPS server's certificate was refused: ${e.message} (${e.code})`, false, 'tls', {cause: e})
  }
  if (/wrong version number|no protocols available|unsupported protocol/i.test(e.message)) {
    return new UploadError(`no TLS 1.2 or 1.3 with the FTP server: ${e.message}`, false, 'tls', {cause: e})
  }
  return new UploadError(e.message || String(error), true, 'transfer', {cause: e})
}
