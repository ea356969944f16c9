import {createHash, type Hash} from 'node:crypto'
import type {Readable} from 'node:stream'

import type {SFTPWrapper} from 'ssh2'

import {ShienError} from '../errors.js'
import {ChunkReader} from './chunk-reader.js'
import {sftpCall} from './sftp-call.js'

/** The bytes to send: opened from the start every time, so they must be deterministic. */
export interface UploadSource {
  size: number
  open(): Readable
}

export interface UploadOptions {
  /** SFTP channels to write through in parallel (each with its own window and handle). */
  channels: SFTPWrapper[]
  partPath: string
  source: UploadSource
  /** sha256 (hex) of the first `length` bytes of the blade's .part, for the resume check. */
  remotePrefixHash(length: number): Promise<string>
  onProgress?: (bytes: number, total: number) => void
  signal?: AbortSignal
  /** Bytes per write request (capped by the server's limit). */
  chunkSize?: number
  /** Bytes in flight across all channels: also how far back a resume must re-check. */
  window?: number
}

export interface UploadResult {
  sha256: string
  size: number
  /** Where this run started writing: the blade already had the bytes before it. */
  resumedFrom: number
  bytesSent: number
}

const DEFAULT_CHUNK = 256 * 1024 - 1024
const DEFAULT_WINDOW = 32 * 1024 * 1024

/**
 * Streams `source` into `partPath`, hashing on the way, with many write requests in flight on
 * several channels. Writes are never issued more than `window` bytes past the oldest one not yet
 * acknowledged, so after an interruption every byte below (size on the blade - window) is
 * known to be written: a re-run checks that prefix by hash and sends only the rest.
 */
export async function uploadResumable(opts: UploadOptions): Promise<UploadResult> {
  const chunk = Math.min(opts.chunkSize ?? DEFAULT_CHUNK, maxWrite(opts.channels[0]))
  const window = Math.max(opts.window ?? DEFAULT_WINDOW, chunk * opts.channels.length)
  const total = opts.source.size
  const remoteSize = await statSize(opts.channels[0], opts.partPath)
  const candidate = remoteSize > total ? 0 : Math.max(0, Math.floor((remoteSize - window) / chunk) * chunk)
  const hash = createHash('sha256')
  let reader = new ChunkReader(opts.source.open())
  let start = 0
  if (candidate > 0) {
    const [remote] = await Promise.all([opts.remotePrefixHash(candidate), reader.consume(candidate, (p) => hash.update(p))])
    if (remote === hash.copy().digest('hex')) {
      start = candidate
    } else {
      await reader.close()
      reader = new ChunkReader(opts.source.open())
      hash.destroy()
      return writeAll(opts, {reader, hash: createHash('sha256'), start: 0, chunk, window, total, fresh: true})
    }
  }
  return writeAll(opts, {reader, hash, start, chunk, window, total, fresh: start === 0})
}

interface WriteState {
  reader: ChunkReader
  hash: Hash
  start: number
  chunk: number
  window: number
  total: number
  fresh: boolean
}

async function writeAll(opts: UploadOptions, s: WriteState): Promise<UploadResult> {
  const handles = await openHandles(opts.channels, opts.partPath, s.fresh)
  const inFlight = new Map<number, Promise<void>>()
  let offset = s.start
  let acked = s.start
  let failure: unknown
  let turn = 0
  try {
    for (;;) {
      opts.signal?.throwIfAborted()
      if (failure) throw failure
      const piece = await s.reader.next(s.chunk)
      if (!piece) break
      s.hash.update(piece)
      // Keep the window: wait while this write would land too far past the oldest unacknowledged one.
      while (inFlight.size > 0 && offset + piece.length - Math.min(...inFlight.keys()) > s.window) {
        await Promise.race(inFlight.values())
        if (failure) throw failure
      }
      const at = offset
      const index = turn++ % opts.channels.length
      const request = sftpCall<number>((cb) => opts.channels[index].write(handles[index], piece, 0, piece.length, at, cb))
        .then(() => {
          inFlight.delete(at)
          acked += piece.length
          opts.onProgress?.(acked, s.total)
        })
        .catch((error: unknown) => {
          inFlight.delete(at)
          failure ??= error
        })
      inFlight.set(at, request)
      offset += piece.length
    }
    await Promise.all(inFlight.values())
    if (failure) throw failure
    if (offset !== s.total) {
      throw new ShienError(`The box changed while it was sent (${offset} bytes instead of ${s.total}).`, {code: 'SOURCE_CHANGED', exit: 'badInput'})
    }
  } catch (error) {
    throw wrapWriteError(error, opts.partPath)
  } finally {
    await s.reader.close()
    await Promise.allSettled(handles.map((h, i) => sftpCall((cb) => opts.channels[i].close(h, cb))))
  }
  return {sha256: s.hash.digest('hex'), size: s.total, resumedFrom: s.start, bytesSent: offset - s.start}
}

async function openHandles(channels: SFTPWrapper[], path: string, fresh: boolean): Promise<Buffer[]> {
  const first = await sftpCall<Buffer>((cb) => channels[0].open(path, fresh ? 'w' : 'r+', {mode: 0o600}, cb)).catch((error: unknown) => {
    throw wrapWriteError(error, path)
  })
  const rest = await Promise.all(channels.slice(1).map((c) => sftpCall<Buffer>((cb) => c.open(path, 'r+', cb))))
  return [first, ...rest]
}

async function statSize(channel: SFTPWrapper, path: string): Promise<number> {
  try {
    const stats = await sftpCall<{size: number; isFile(): boolean}>((cb) => channel.lstat(path, cb as never))
    return stats.isFile() ? stats.size : 0
  } catch {
    return 0
  }
}

function maxWrite(channel: SFTPWrapper): number {
  const limit = (channel as unknown as {_maxWriteLen?: number})._maxWriteLen
  return typeof limit === 'number' && limit > 0 ? limit : 32 * 1024
}

function wrapWriteError(error: unknown, path: string): unknown {
  if (error instanceof ShienError || (error as Error)?.name === 'AbortError') return error
  const e = error as Error & {code?: number}
  const full = e.code === 4 && /quota|space/i.test(e.message)
  return new ShienError(`Cannot write ${path} on the blade (SFTP: ${e.message}).`, {
    code: full ? 'BLADE_DISK_FULL' : 'UPLOAD_FAILED',
    exit: 'remote',
    cause: error,
    suggestions: full
      ? ['Free space in your blade directory (old boxes in incoming/), or ask an admin.']
      : ['Run the same command again: the upload resumes where it stopped.', 'If it keeps failing, ask an admin to run "shien admin provision".'],
  })
}
