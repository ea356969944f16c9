import {createReadStream} from 'node:fs'
import {stat} from 'node:fs/promises'
import {posix} from 'node:path'
import {Readable, Transform, type TransformCallback} from 'node:stream'
import tar, {type Pack} from 'tar-stream'

import {badInput} from '../errors.js'
import {readBoxEntries, type BoxEntry} from './box-tar.js'
import type {BoxInfo} from './inspect.js'

/**
 * The bytes that go to the blade for a box. `open` can be called again after an interrupted
 * upload: the stream is the same bytes every time, so a resume opens it at `start`.
 */
export interface BoxPayload {
  /** `file`: the box's own bytes. `repacked`: a plain tar rebuilt without private keys. */
  kind: 'file' | 'repacked'
  open(opts?: {signal?: AbortSignal; start?: number}): Readable
  /** Exact length of what `open()` yields, computed without reading the disks. */
  size(): Promise<number>
}

const PRIVATE_KEY = 'vagrant_private_key'
const END_OF_ARCHIVE = 1024
// A fixed, plausible time: GNU tar warns about 1970 timestamps, and any real time would make
// two runs differ.
const FIXED_MTIME = new Date('2000-01-01T00:00:00Z')

/**
 * Decides what to upload for an inspected box. A plain tar without a private key goes as it
 * is; a gzip box, or one holding `vagrant_private_key`, is re-packed as a plain tar (its
 * VMDKs are compressed already) with only its regular files, minus every private key.
 */
export function boxPayload(path: string, info: BoxInfo): BoxPayload {
  if (info.compression === 'none' && info.privateKeys.length === 0) {
    return {
      kind: 'file',
      open: (opts = {}) => createReadStream(path, {start: opts.start ?? 0, signal: opts.signal}),
      size: async () => (await stat(path)).size,
    }
  }
  const kept = info.entries.filter((entry) => entry.type === 'file' && posix.basename(entry.name) !== PRIVATE_KEY)
  return {
    kind: 'repacked',
    open: (opts = {}) => skipBytes(repack(path, kept, opts.signal), opts.start ?? 0),
    size: () => repackedSize(kept),
  }
}

function fixedHeader(entry: BoxEntry) {
  return {name: entry.name, size: entry.size, type: 'file' as const, mode: 0o644, uid: 0, gid: 0, uname: '', gname: '', mtime: FIXED_MTIME}
}

function repack(path: string, kept: BoxEntry[], signal: AbortSignal | undefined): Readable {
  const pack = tar.pack()
  const stop = new AbortController()
  const output = Readable.from(pack as unknown as AsyncIterable<Buffer>, {objectMode: false})
  output.once('close', () => stop.abort(new Error('payload stream closed')))
  const signals = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal
  let index = 0
  readBoxEntries(path, {
    signal: signals,
    onEntry: async (entry, body) => {
      if (entry.type !== 'file' || posix.basename(entry.name) === PRIVATE_KEY) return
      const expected = kept[index++]
      if (expected?.name !== entry.name || expected.size !== entry.size) throw changed(path)
      await addEntry(pack, entry, body)
    },
  }).then(() => {
    if (index !== kept.length) throw changed(path)
    pack.finalize()
  }).catch((error: unknown) => pack.destroy(error as Error))
  return output
}

/** Copies one entry into the pack, honouring the pack's backpressure. */
function addEntry(pack: Pack, entry: BoxEntry, body: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    const sink = pack.entry(fixedHeader(entry), (error) => (error ? reject(error) : resolve()))
    const copy = async () => {
      for await (const chunk of body) {
        if (!sink.write(chunk as Buffer)) await new Promise<void>((done) => {
          sink.once('drain', () => done())
          sink.once('close', () => done())
        })
      }
      sink.end(undefined)
    }
    copy().catch((error: unknown) => sink.destroy(error as Error))
  })
}

/** Header bytes tar-stream writes for a name (one block, or a pax record for long names) plus padded data. */
async function repackedSize(kept: BoxEntry[]): Promise<number> {
  let total = END_OF_ARCHIVE
  for (const entry of kept) total += (await headerBytes(entry.name)) + Math.ceil(entry.size / 512) * 512
  return total
}

async function headerBytes(name: string): Promise<number> {
  const pack = tar.pack()
  pack.entry({...fixedHeader({name, size: 0, type: 'file'})}, Buffer.alloc(0))
  pack.finalize()
  let bytes = 0
  for await (const chunk of pack as unknown as AsyncIterable<Buffer>) bytes += chunk.length
  return bytes - END_OF_ARCHIVE
}

/** Drops the first `count` bytes, so a resumed upload continues where the blade's copy stops. */
function skipBytes(stream: Readable, count: number): Readable {
  if (count === 0) return stream
  let left = count
  const skipper = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      const skip = Math.min(left, chunk.length)
      left -= skip
      callback(null, skip === chunk.length ? undefined : chunk.subarray(skip))
    },
  })
  stream.once('error', (error) => skipper.destroy(error))
  skipper.once('close', () => stream.destroy())
  return stream.pipe(skipper)
}

function changed(path: string): Error {
  return badInput('BOX_CHANGED', `The box ${path} changed since it was inspected, so the upload would not match.`, [
    'Run the same command again: the box is inspected afresh.',
  ])
}
