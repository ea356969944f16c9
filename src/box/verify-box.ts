import {createHash, type Hash} from 'node:crypto'
import {posix} from 'node:path'
import {Transform, type Readable} from 'node:stream'

import {readBoxEntries, type BoxEntry} from './box-tar.js'
import {openSource} from './catalog-fetch.js'
import {readHead as readEntryHead} from './entry-head.js'
import {checkVmdkHeader} from './vmdk-gate.js'

/** What one pass over a box file found, before it is judged against a catalog entry. */
export interface BoxScan {
  bytes: number
  /** Hex digests, by checksum type, of the whole file (only when it was read to the end). */
  digests: Record<string, string>
  /** Whether the file was read to the end (it is not when no checksum needs it). */
  whole: boolean
  metadata?: unknown
  ovf: boolean
  /** VMDK gate verdicts, one per .vmdk entry: undefined when accepted. */
  vmdks: Array<{name: string; problem?: string}>
  qcow2?: Qcow2Facts
  /** Why the file could not be read as a box at all. */
  error?: string
}

export interface Qcow2Facts {
  ok: boolean
  virtualBytes: number
  backing: boolean
  externalData: boolean
}

const QCOW2_MAGIC = 0x514649fb
const METADATA_LIMIT = 1024 * 1024

/** Signals that everything needed was seen, so the rest of the file is not downloaded. */
class Enough extends Error {}

/**
 * Downloads (or reads) a box once, hashing it with each of `hashTypes` and collecting
 * metadata.json and the disk headers. With no hash to compute, it stops as soon as
 * metadata.json and the disk headers have been seen.
 */
export async function scanBox(url: string, hashTypes: string[], signal?: AbortSignal): Promise<BoxScan> {
  const scan: BoxScan = {bytes: 0, digests: {}, whole: false, ovf: false, vmdks: []}
  const hashes = new Map<string, Hash>(hashTypes.map((type) => [type, createHash(type)]))
  const stop = new AbortController()
  const signals = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal
  try {
    const source = await openSource(url, {signal: signals})
    const counted = source.stream.pipe(meter(scan, hashes))
    source.stream.once('error', (error) => counted.destroy(error))
    await readBoxEntries(counted as Readable, {
      signal: signals,
      onEntry: async (entry, body) => {
        await collect(scan, entry, body)
        if (hashes.size === 0 && scan.metadata !== undefined && (scan.qcow2 || scan.vmdks.length > 0)) throw new Enough()
      },
    })
    // readBoxEntries returns once its pipeline has taken every byte, padding after the
    // end-of-archive blocks included, so the digests cover the whole file.
    scan.whole = true
    for (const [type, hash] of hashes) scan.digests[type] = hash.digest('hex')
  } catch (error) {
    signal?.throwIfAborted()
    if (!(error instanceof Enough)) scan.error = (error as Error).message
  } finally {
    stop.abort()
  }
  return scan
}

function meter(scan: BoxScan, hashes: Map<string, Hash>): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      scan.bytes += chunk.length
      for (const hash of hashes.values()) hash.update(chunk)
      callback(null, chunk)
    },
  })
}

async function collect(scan: BoxScan, entry: BoxEntry, body: Readable): Promise<void> {
  if (entry.type !== 'file') return
  const base = posix.basename(entry.name)
  if (entry.name === 'metadata.json' && entry.size <= METADATA_LIMIT) {
    const chunks: Buffer[] = []
    for await (const chunk of body) chunks.push(chunk as Buffer)
    try {
      scan.metadata = JSON.parse(Buffer.concat(chunks).toString('utf8'))
    } catch {
      scan.metadata = null
    }
  } else if (/\.ovf$/i.test(base) && !base.startsWith('._')) {
    scan.ovf = true
  } else if (/\.vmdk$/i.test(base)) {
    const head = await readEntryHead(body)
    try {
      checkVmdkHeader(head, base)
      scan.vmdks.push({name: entry.name})
    } catch (error) {
      scan.vmdks.push({name: entry.name, problem: (error as Error).message})
    }
  } else if (entry.name === 'box.img') {
    scan.qcow2 = qcow2Facts(await readHead(body, 104))
  }
}

async function readHead(body: Readable, length: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of body) {
    chunks.push(chunk as Buffer)
    total += (chunk as Buffer).length
    if (total >= length) break
  }
  return Buffer.concat(chunks).subarray(0, length)
}

/** The fixed qcow2 header fields (qemu docs/interop/qcow2.txt) that matter for a base image. */
function qcow2Facts(head: Buffer): Qcow2Facts {
  if (head.length < 72 || head.readUInt32BE(0) !== QCOW2_MAGIC) return {ok: false, virtualBytes: 0, backing: false, externalData: false}
  const version = head.readUInt32BE(4)
  const incompatible = version >= 3 && head.length >= 80 ? head.readBigUInt64BE(72) : 0n
  return {
    ok: version === 2 || version === 3,
    virtualBytes: Number(head.readBigUInt64BE(24)),
    backing: head.readBigUInt64BE(8) !== 0n,
    externalData: (incompatible & 4n) !== 0n,
  }
}
