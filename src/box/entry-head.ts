import {open} from 'node:fs/promises'
import type {Readable} from 'node:stream'

import {QCOW2_HEAD_LIMIT} from './qcow2-gate.js'
import {DESCRIPTOR_LIMIT, looksLikeDescriptor} from './vmdk-descriptor.js'
import {vmdkHeadLength} from './vmdk-gate.js'

const SECTOR = 512
const QCOW2_MAGIC = 0x514649fb

/**
 * How much of a file the gates need, given its first 512 bytes: a sparse VMDK's header and
 * embedded descriptor, a qcow2 header with its extensions, a whole text descriptor (one byte
 * more than the gate allows, so an oversized one shows), or else the first sector (Parallels
 * images keep everything the gate reads in their first 64 bytes).
 */
export function headLength(first: Buffer): number {
  if (first.length >= 4 && first.readUInt32BE(0) === QCOW2_MAGIC) return QCOW2_HEAD_LIMIT
  if (first.subarray(0, 4).toString('latin1') === 'KDMV') return vmdkHeadLength(first)
  if (looksLikeDescriptor(first)) return DESCRIPTOR_LIMIT + 1
  return SECTOR
}

/**
 * Reads what the gates need from the start of a stream and leaves the stream open and paused,
 * so a tar reader can skip the rest. Returns fewer bytes when the stream is shorter.
 */
export async function readHead(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  let length = 0
  let want = SECTOR
  for await (const chunk of stream.iterator({destroyOnReturn: false})) {
    chunks.push(chunk as Buffer)
    length += (chunk as Buffer).length
    if (length >= SECTOR) want = headLength(Buffer.concat(chunks).subarray(0, SECTOR))
    if (length >= want) break
  }
  return Buffer.concat(chunks).subarray(0, want)
}

/** The same head, read from a file on disk (the blade reads the files it unpacked). */
export async function readHeadOfFile(path: string): Promise<Buffer> {
  const handle = await open(path, 'r')
  try {
    const first = Buffer.alloc(SECTOR)
    const {bytesRead} = await handle.read(first, 0, SECTOR, 0)
    const want = headLength(first.subarray(0, bytesRead))
    if (want <= bytesRead) return first.subarray(0, Math.min(want, bytesRead))
    const head = Buffer.alloc(want)
    const more = await handle.read(head, 0, want, 0)
    return head.subarray(0, more.bytesRead)
  } finally {
    await handle.close()
  }
}
