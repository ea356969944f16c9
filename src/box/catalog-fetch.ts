import {createReadStream} from 'node:fs'
import {stat} from 'node:fs/promises'
import {resolve} from 'node:path'
import {Readable} from 'node:stream'
import {fileURLToPath, pathToFileURL} from 'node:url'

import {badInput, ShienError} from '../errors.js'
import {CATALOG_SIZE_LIMIT, parseCatalog, type Catalog} from './catalog.js'

/** An opened catalog or box: its bytes, and what the server said about them. */
export interface OpenedSource {
  /** The absolute URL it was read from (file:// for paths). */
  url: string
  stream: Readable
  /** Content-Length or file size, when known. */
  size?: number
  /** Content-Type for http(s); undefined for files. */
  contentType?: string
}

/** A catalog as read, with where it came from. */
export interface LoadedCatalog {
  url: string
  catalog: Catalog
  contentType?: string
}

/** Whether `spec` names a URL shien can read (http, https or file), not a local path. */
export function isUrl(spec: string): boolean {
  return /^(https?|file):\/\//i.test(spec)
}

/** A path or URL as an absolute URL: paths become file:// URLs. */
export function toUrl(spec: string): string {
  return isUrl(spec) ? spec : pathToFileURL(resolve(spec)).href
}

/**
 * Opens a path, file:// or http(s) URL for streaming. An http answer other than 200 is an
 * error; nothing is downloaded before the caller reads the stream.
 */
export async function openSource(spec: string, opts: {signal?: AbortSignal; accept?: string} = {}): Promise<OpenedSource> {
  const url = toUrl(spec)
  if (url.startsWith('file:')) return openFile(url)
  let response: Response
  try {
    response = await fetch(url, {signal: opts.signal, headers: opts.accept ? {accept: opts.accept} : {}, redirect: 'follow'})
  } catch (error) {
    opts.signal?.throwIfAborted()
    throw new ShienError(`Cannot download ${url}: ${describeFetchError(error)}.`, {
      code: 'DOWNLOAD_FAILED', exit: 'connection', cause: error, suggestions: ['Check the URL and that the server is up.'],
    })
  }
  if (response.status !== 200 || !response.body) {
    await response.body?.cancel()
    throw new ShienError(`Cannot download ${url}: the server answered ${response.status} ${response.statusText}.`, {
      code: response.status === 404 ? 'DOWNLOAD_NOT_FOUND' : 'DOWNLOAD_FAILED', exit: 'connection',
      suggestions: ['Check the URL; published files are listed in the catalog.'],
    })
  }
  const length = Number(response.headers.get('content-length') ?? Number.NaN)
  return {
    url,
    stream: Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>),
    size: Number.isFinite(length) ? length : undefined,
    contentType: response.headers.get('content-type') ?? undefined,
  }
}

async function openFile(url: string): Promise<OpenedSource> {
  const path = fileURLToPath(url)
  try {
    const info = await stat(path)
    if (!info.isFile()) throw Object.assign(new Error('not a file'), {code: 'EISDIR'})
    return {url, stream: createReadStream(path), size: info.size}
  } catch (error) {
    const code = (error as {code?: string}).code
    const why = code === 'ENOENT' ? 'there is no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is not a file' : (error as Error).message
    throw new ShienError(`Cannot read ${path}: ${why}.`, {code: code === 'ENOENT' ? 'DOWNLOAD_NOT_FOUND' : 'DOWNLOAD_FAILED', exit: 'badInput', cause: error})
  }
}

function describeFetchError(error: unknown): string {
  const cause = (error as {cause?: {code?: string; message?: string}}).cause
  return cause?.code ?? cause?.message ?? (error as Error).message
}

/**
 * Reads and checks a catalog from a path or URL. Over http it must come as application/json:
 * Vagrant decides by Content-Type whether a URL is a catalog or a box, and takes anything else
 * for a box ("Unrecognized archive format").
 */
export async function loadCatalog(spec: string, opts: {signal?: AbortSignal} = {}): Promise<LoadedCatalog> {
  const source = await openSource(spec, {signal: opts.signal, accept: 'application/json'})
  if (source.contentType !== undefined && !/application\/json/i.test(source.contentType)) {
    source.stream.destroy()
    throw badInput('CATALOG_CONTENT_TYPE', `${source.url} is served as "${source.contentType}", not application/json: Vagrant would take the catalog for a box and fail with "Unrecognized archive format".`, [
      'Serve .json files with Content-Type: application/json (see templates/nginx-boxes.conf).',
    ])
  }
  const text = await readLimited(source, CATALOG_SIZE_LIMIT)
  return {url: source.url, catalog: parseCatalog(text, source.url), contentType: source.contentType}
}

async function readLimited(source: OpenedSource, limit: number): Promise<string> {
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of source.stream) {
    total += (chunk as Buffer).length
    if (total > limit) {
      source.stream.destroy()
      throw badInput('CATALOG_TOO_LARGE', `${source.url} is larger than ${limit} bytes, so Vagrant would not read it as a catalog.`)
    }
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}
