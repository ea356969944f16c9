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
  /**
   * The resume check, computed on the blade: sha256 (hex) of the .part's first `prefix` bytes,
   * and of each `blockSize` block after it up to the end of the file.
   */
  remoteHashes(prefix: number, blockSize: number): Promise<RemoteHashes>
  onProgress?: (bytes: number, total: number) => void
  signal?: AbortSignal
  /** Bytes per write request (capped by the server's limit). */
  chunkSize?: number
  /** Bytes in flight across all channels: also how far back a resume must re-check. */
  window?: number
}

export interface RemoteHashes {
  prefix: string
  blocks: string[]
}

export interface UploadResult {
  sha256: string
  size: number
  /** Where this run started writing: the blade already had the bytes before it. */
  resumedFrom: number
  bytesSent: number
}

const DEFAULT_CHUNK = 256 * 1024 - 1024
const DEFAULT_WINDOW = 16 * 1024 * 1024

/**
 * Streams `source` into `partPath`, hashing on the way, with many write requests in flight on
 * several channels. Writes are never issued more than `window` bytes past the oldest one not yet
 * acknowledged, so after an interruption every byte below (size on the blade - window) is
 * written. A re-run checks that prefix by one hash and the last window block by block, and
 * sends from the first block that differs (an unwritten hole reads back as zeros).
 */
export async function uploadResumable(opts: UploadOptions): Promise<UploadResult> {
  const chunk = Math.min(opts.chunkSize ?? DEFAULT_CHUNK, maxWrite(opts.channels[0]))
  const window = Math.max(opts.window ?? DEFAULT_WINDOW, chunk * opts.channels.length)
  const total = opts.source.size
  const remoteSize = await statSize(opts.channels[0], opts.partPath)
  const reader = new ChunkReader(opts.source.open())
  const hash = createHash('sha256')
  const base = {reader, hash, chunk, window, total}
  if (remoteSize === 0 || remoteSize > total) return writeAll(opts, {...base, start: 0, fresh: true})
  const prefix = Math.max(0, Math.floor((remoteSize - window) / chunk) * chunk)
  const [remote] = await Promise.all([opts.remoteHashes(prefix, chunk), reader.consume(prefix, (p) => hash.update(p))])
  if (remote.prefix !== hash.copy().digest('hex')) {
    await reader.close()
    const fresh = {...base, reader: new ChunkReader(opts.source.open()), hash: createHash('sha256')}
    return writeAll(opts, {...fresh, start: 0, fresh: true})
  }
  let start = prefix
  for (const blockHash of remote.blocks) {
    const piece = await reader.readExact(chunk)
    if (piece.length === 0) break
    if (createHash('sha256').update(piece).digest('hex') !== blockHash) {
      reader.unshift(piece)
      break
    }
    hash.update(piece)
    start += piece.length
  }
  return writeAll(opts, {...base, start, fresh: false})
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
  // A channel that closes under the upload (the connection cut, sshd's session killed, the
  // keepalives unanswered) fails it at once: its pending writes may never be answered.
  const lost = channelsLost(opts.channels, () => connectionLost(acked, s.total))
  try {
    for (;;) {
      opts.signal?.throwIfAborted()
      if (failure) throw failure
      const piece = await Promise.race([s.reader.next(s.chunk), lost.promise])
      if (!piece) break
      s.hash.update(piece)
      const length = piece.length
      // Keep the window: wait while this write would land too far past the oldest unacknowledged one.
      while (inFlight.size > 0 && offset + length - Math.min(...inFlight.keys()) > s.window) {
        await Promise.race([...inFlight.values(), lost.promise])
        if (failure) throw failure
      }
      const at = offset
      const index = turn++ % opts.channels.length
      // SFTP.write copies the bytes into its packet at once; the callbacks below hold only the
      // length, so the read buffer can be freed before the write is acknowledged.
      const request = sftpCall<number>((cb) => opts.channels[index].write(handles[index], piece, 0, length, at, cb))
        .then(() => {
          inFlight.delete(at)
          acked += length
          opts.onProgress?.(acked, s.total)
        })
        .catch((error: unknown) => {
          inFlight.delete(at)
          failure ??= error
        })
      inFlight.set(at, request)
      offset += length
    }
    await Promise.race([Promise.all(inFlight.values()), lost.promise])
    if (failure) throw failure
    if (offset !== s.total) {
      throw new ShienError(`The box changed while it was sent (${offset} bytes instead of ${s.total}).`, {code: 'SOURCE_CHANGED', exit: 'badInput'})
    }
  } catch (error) {
    // Ctrl-C is the user's, whatever the writes said as the connection went down with it.
    if (opts.signal?.aborted) throw opts.signal.reason
    if (lost.happened()) throw connectionLost(acked, s.total)
    throw wrapWriteError(error, opts.partPath)
  } finally {
    lost.stop()
    await s.reader.close()
    // A closed channel answers no close: each gets a moment, then the handles are left to the server.
    await Promise.allSettled(handles.map((h, i) => within(CLOSE_WAIT_MS, sftpCall((cb) => opts.channels[i].close(h, cb)))))
  }
  return {sha256: s.hash.digest('hex'), size: s.total, resumedFrom: s.start, bytesSent: offset - s.start}
}

/** How long a handle's close may take once the upload is over (a dead channel never answers). */
const CLOSE_WAIT_MS = 2000

interface LostWatch {
  /** Rejects when a channel closes before `stop`; never resolves. */
  promise: Promise<never>
  happened(): boolean
  stop(): void
}

function channelsLost(channels: SFTPWrapper[], error: () => Error): LostWatch {
  let happened = false
  let fail: (e: Error) => void = () => undefined
  const promise = new Promise<never>((_, reject) => (fail = reject))
  promise.catch(() => undefined)
  const onClose = () => {
    if (happened) return
    happened = true
    fail(error())
  }
  for (const channel of channels) channel.once('close', onClose)
  return {
    promise,
    happened: () => happened,
    stop: () => {
      for (const channel of channels) channel.off('close', onClose)
    },
  }
}

function connectionLost(acked: number, total: number): ShienError {
  const percent = total > 0 ? Math.floor((acked / total) * 100) : 0
  return new ShienError(`The connection to the blade was lost during the upload, at ${percent}%: run the same command to resume.`, {
    code: 'CONNECTION_LOST',
    exit: 'connection',
    suggestions: ['Run the same command again: the upload resumes where it stopped.', 'On Wi-Fi, a wired network or staying in range helps.'],
  })
}

/** Settles with `promise`, or after `ms` with nothing. */
function within(ms: number, promise: Promise<unknown>): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise((resolve) => (timer = setTimeout(resolve, ms)))
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
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
