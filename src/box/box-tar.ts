import {createReadStream} from 'node:fs'
import {open} from 'node:fs/promises'
import {PassThrough, Readable, Transform, type TransformCallback} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {createGunzip} from 'node:zlib'
import tar from 'tar-stream'

import {badInput, isShienError, ShienError} from '../errors.js'
import {checkEntryHeader, type BoxEntry} from './entry-name.js'

export type {BoxEntry} from './entry-name.js'

/** How the box's tar is stored on disk. Decided by magic bytes, never by the file name. */
export type Compression = 'gzip' | 'none'

/**
 * Receives each safe entry once, in archive order. `body` is a Node Readable of the entry's
 * bytes; reading it is optional (whatever is left unread is skipped), and destroying it only
 * stops this entry's delivery, never the archive.
 */
export type EntryHandler = (entry: BoxEntry, body: Readable) => Promise<void>

/** Options for {@link readBoxEntries}. */
export interface ReadBoxOptions {
  signal?: AbortSignal
  onEntry: EntryHandler
}

const GZIP_MAGIC = [0x1f, 0x8b]
const TRUNCATED_HINT = ['Download the box again, or package it again with "vagrant package".']

/** Reads the first two bytes of a box file to tell gzip from a plain tar. */
export async function detectCompression(path: string): Promise<Compression> {
  let handle
  try {
    handle = await open(path, 'r')
    const head = Buffer.alloc(2)
    const {bytesRead} = await handle.read(head, 0, 2, 0)
    return isGzip(head.subarray(0, bytesRead)) ? 'gzip' : 'none'
  } catch (error) {
    throw boxFileError(path, error)
  } finally {
    await handle?.close()
  }
}

/**
 * Streams a box (plain or gzip tar) and hands every entry to `onEntry`, refusing unsafe
 * entries (`BOX_UNSAFE_ENTRY`) before their bytes are delivered. Never holds a whole entry in
 * memory. Resolves once the end-of-archive marker has been read; an archive that stops early
 * is `BOX_TRUNCATED`.
 */
export async function readBoxEntries(source: string | Readable, opts: ReadBoxOptions): Promise<{compression: Compression}> {
  const {compression, stream} = typeof source === 'string' ? await openPath(source) : await sniff(source)
  const extract = tar.extract()
  const counter = new ByteCounter()
  const stages = compression === 'gzip' ? [stream, createGunzip(), counter] : [stream, counter]
  const feeding = pipeline([...stages, extract] as unknown as [Readable, NodeJS.WritableStream], {signal: opts.signal})
  feeding.catch(() => {})

  const seen = new Set<string>()
  let dataEnd = 0
  try {
    for await (const body of extract) {
      const {header} = body
      dataEnd = body.offset + 512 + padded(header.size ?? 0)
      const entry = checkEntryHeader(header, seen)
      const bytes = body as unknown as AsyncIterable<Buffer>
      await (entry ? deliver(entry, bytes, opts.onEntry) : drain(bytes))
    }
    await feeding
  } catch (error) {
    if (error instanceof HandlerError) throw error.original
    if (isShienError(error)) throw error
    opts.signal?.throwIfAborted()
    throw translate(await feeding.then(() => error, (feedError: unknown) => feedError))
  }
  // GNU tar writes a zero block after the last entry; without one, the file was cut at an entry boundary.
  if (counter.bytes < dataEnd + 512) throw truncated(counter.bytes)
  return {compression}
}

function isGzip(head: Buffer): boolean {
  return head.length >= 2 && head[0] === GZIP_MAGIC[0] && head[1] === GZIP_MAGIC[1]
}

function padded(size: number): number {
  return Math.ceil(size / 512) * 512
}

async function openPath(path: string): Promise<{compression: Compression; stream: Readable}> {
  const compression = await detectCompression(path)
  return {compression, stream: createReadStream(path)}
}

/** Peeks at the first bytes of a stream without losing them. */
async function sniff(input: Readable): Promise<{compression: Compression; stream: Readable}> {
  const iterator = input[Symbol.asyncIterator]()
  let head = Buffer.alloc(0)
  let ended = false
  while (head.length < 2 && !ended) {
    const next = await iterator.next()
    if (next.done) ended = true
    else head = Buffer.concat([head, Buffer.from(next.value)])
  }
  async function* replay(): AsyncGenerator<Buffer> {
    try {
      if (head.length > 0) yield head
      for (let next = ended ? undefined : await iterator.next(); next && !next.done; next = await iterator.next()) {
        yield Buffer.from(next.value)
      }
    } finally {
      await iterator.return?.()
    }
  }
  return {compression: isGzip(head) ? 'gzip' : 'none', stream: Readable.from(replay(), {objectMode: false})}
}

/** Gives the handler its own PassThrough so a handler that stops reading cannot stall or kill the archive. */
async function deliver(entry: BoxEntry, body: AsyncIterable<Buffer>, onEntry: EntryHandler): Promise<void> {
  const pass = new PassThrough()
  // A broken archive destroys `pass` with its error, maybe after the handler stopped reading:
  // the error reaches the caller through the pump, never as an unhandled 'error' event.
  pass.on('error', () => {})
  const state: PumpState = {}
  const pumping = pump(body, pass, state)
  pumping.catch(() => {})
  try {
    await onEntry(entry, pass)
  } catch (error) {
    pass.destroy()
    // A body that failed because the archive broke is the archive's error, not the handler's.
    // Not waiting for the pump: the rest of a refused multi-GB disk is not worth reading.
    throw state.archiveError ?? new HandlerError(error)
  }
  if (!pass.destroyed) pass.resume()
  await pumping
}

interface PumpState {
  archiveError?: unknown
}

async function pump(body: AsyncIterable<Buffer>, pass: PassThrough, state: PumpState): Promise<void> {
  try {
    for await (const chunk of body) {
      if (pass.destroyed) continue
      if (!pass.write(chunk)) await drained(pass)
    }
  } catch (error) {
    state.archiveError = error
    // The handler may be waiting on this body: fail it too, or it waits forever.
    pass.destroy(error as Error)
    throw error
  }
  if (!pass.destroyed) pass.end()
}

function drained(pass: PassThrough): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      pass.off('drain', done)
      pass.off('close', done)
      resolve()
    }
    pass.on('drain', done)
    pass.on('close', done)
  })
}

async function drain(body: AsyncIterable<Buffer>): Promise<void> {
  for await (const _chunk of body) {
    // Skipped entries still have to be read for the archive to move on.
  }
}

/** Carries a handler's own failure past the archive-error translation unchanged. */
class HandlerError extends Error {
  constructor(readonly original: unknown) {
    super('entry handler failed')
  }
}

/** Counts the bytes of the tar stream itself (after gunzip). */
class ByteCounter extends Transform {
  bytes = 0
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length
    callback(null, chunk)
  }
}

function truncated(bytes: number): ShienError {
  return badInput(
    'BOX_TRUNCATED',
    `The box file is incomplete: download or package it again (its archive stops after ${bytes} bytes, before the end-of-archive marker).`,
    TRUNCATED_HINT,
  )
}

/** Turns zlib and tar-stream failures into errors a student can act on, keeping the original as cause. */
function translate(error: unknown): Error {
  if (isShienError(error)) return error
  const {code, message} = (error ?? {}) as {code?: string; message?: string}
  if (code === 'Z_BUF_ERROR' || message === 'Unexpected end of data') {
    return new ShienError('The box file is incomplete: download or package it again.', {
      code: 'BOX_TRUNCATED', exit: 'badInput', suggestions: TRUNCATED_HINT, cause: error,
    })
  }
  if (code?.startsWith('Z_') || message?.startsWith('Invalid tar header') || message === 'Header exceeds max size') {
    return new ShienError(`The box file is not a valid tar or tar.gz archive (${message}).`, {
      code: 'BOX_CORRUPT', exit: 'badInput', cause: error,
      suggestions: ['Check that the path is a Vagrant .box file; if it is, download or package it again.'],
    })
  }
  return error instanceof Error ? error : new Error(String(error))
}

function boxFileError(path: string, error: unknown): Error {
  const code = (error as {code?: string}).code
  const reasons: Record<string, [string, string]> = {
    ENOENT: ['BOX_NOT_FOUND', 'there is no such file'],
    EISDIR: ['BOX_NOT_FILE', 'it is a directory, not a .box file'],
    EACCES: ['BOX_UNREADABLE', 'permission denied'],
  }
  const reason = code ? reasons[code] : undefined
  if (!reason) return error instanceof Error ? error : new Error(String(error))
  return new ShienError(`Cannot read the box ${path}: ${reason[1]}.`, {
    code: reason[0], exit: 'badInput', cause: error,
    suggestions: ['Give the path of a .box file, e.g. the package.box written by "vagrant package".'],
  })
}
