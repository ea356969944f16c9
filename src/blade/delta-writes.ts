import {open, rm, type FileHandle} from 'node:fs/promises'
import {join} from 'node:path'

import type {DeltaRecord} from '../delta/delta-file.js'
import {BLOCK_SIZE, blockLengthOf} from '../delta/manifest.js'
import {type IoWrite, qemuIoWrite} from '../qemu-img/qemu-io.js'

export interface DeltaWriteOptions {
  /** A private folder for the data files qemu-io reads; emptied as it goes. */
  work: string
  signal?: AbortSignal
  /** Most bytes of data files waiting for one qemu-io run (default 64 MiB): bounds scratch space. */
  batchBytes?: number
  /** Most bytes one data write covers (default 16 MiB). */
  runBytes?: number
}

// Longer zero runs only cost qemu-io's bookkeeping, but stay well under its request limit.
const MAX_ZERO_RUN = 256 * 2 ** 20
const MAX_COMMANDS = 4096

interface Run {
  kind: 'data' | 'zero'
  offset: number
  length: number
  nextIndex: number
  file?: string
  handle?: FileHandle
}

/**
 * Writes a delta's records into a qcow2 image through qemu-io: adjacent blocks of the same
 * kind become one write (data runs through a file in `work`, each exactly its length; zero runs
 * as `write -z`), and a qemu-io process takes the writes of up to `batchBytes` of data at once.
 * Records come from the strict reader, which has already refused blocks past the disk, out of
 * order or repeated, or of the wrong length; a refusal mid-way propagates and the caller throws
 * the image away.
 */
export async function writeDeltaRecords(
  image: string,
  virtualSize: number,
  records: AsyncIterable<DeltaRecord & {data: Buffer | undefined}>,
  o: DeltaWriteOptions,
): Promise<{blocks: number; writes: number}> {
  const batchBytes = o.batchBytes ?? 64 * 2 ** 20
  const runBytes = o.runBytes ?? 16 * 2 ** 20
  let pending: Array<IoWrite & {file?: string}> = []
  let pendingBytes = 0
  let run: Run | undefined
  let blocks = 0
  let writes = 0
  let files = 0

  const flush = async () => {
    await qemuIoWrite(image, pending, {signal: o.signal})
    for (const w of pending) if (w.kind === 'data') await rm(w.file, {force: true})
    writes += pending.length
    pending = []
    pendingBytes = 0
  }
  const close = async () => {
    if (!run) return
    await run.handle?.close()
    pending.push(run.kind === 'data' ? {kind: 'data', offset: run.offset, length: run.length, file: run.file!} : {kind: 'zero', offset: run.offset, length: run.length})
    if (run.kind === 'data') pendingBytes += run.length
    run = undefined
    if (pendingBytes >= batchBytes || pending.length >= MAX_COMMANDS) await flush()
  }

  try {
    for await (const record of records) {
      o.signal?.throwIfAborted()
      const kind = record.kind === 'zero' ? 'zero' : 'data'
      const length = blockLengthOf(virtualSize, record.index)
      const limit = kind === 'data' ? runBytes : MAX_ZERO_RUN
      if (!run || run.kind !== kind || run.nextIndex !== record.index || run.length + length > limit) {
        await close()
        run = {kind, offset: record.index * BLOCK_SIZE, length: 0, nextIndex: record.index}
        if (kind === 'data') {
          run.file = join(o.work, `run-${files++}.raw`)
          run.handle = await open(run.file, 'wx', 0o600)
        }
      }
      if (kind === 'data') {
        const data = record.data!
        if (data.length !== length) throw new Error(`Block ${record.index} has ${data.length} bytes, not ${length}.`)
        await run.handle!.write(data, 0, data.length, run.length)
      }
      run.length += length
      run.nextIndex = record.index + 1
      blocks++
    }
    await close()
    if (pending.length > 0) await flush()
    return {blocks, writes}
  } finally {
    await run?.handle?.close().catch(() => undefined)
  }
}
