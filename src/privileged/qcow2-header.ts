import type {FileHandle} from 'node:fs/promises'

import {badInput} from '../errors.js'
import {MAX_BACKING_NAME, QCOW2_HEADER_BYTES, qcow2Fixed} from '../qemu-img/qcow2-backing.js'

/** What ie-virsh reads from a qcow2 header itself, before any tool opens the file. */
export interface Qcow2Header {
  version: 2 | 3
  /** The backing file name exactly as stored (relative names are relative to the image). */
  backingName?: string
  /** Incompatible feature bit 2: the guest data lives in another file the header names. */
  externalDataFile: boolean
}

/**
 * Reads the fixed part of a qcow2 header (docs/interop/qcow2.txt in qemu) from an open file.
 * This runs before qemu-img is given the path, so qemu-img never opens a file that a header
 * points at (a FIFO, a device, /etc/shadow) until that file has been vetted.
 */
export async function readQcow2Header(handle: FileHandle, path: string): Promise<Qcow2Header> {
  const head = Buffer.alloc(QCOW2_HEADER_BYTES)
  const {bytesRead} = await handle.read(head, 0, head.length, 0)
  const fixed = qcow2Fixed(head.subarray(0, bytesRead))
  if (!fixed) {
    throw badInput('IMAGE_NOT_QCOW2', `${path} is not a qcow2 image.`, [
      'Convert it first: qemu-img convert -f vmdk -O qcow2 box.vmdk ' + path,
    ])
  }
  const {version, backingOffset, backingSize, externalDataFile} = fixed
  if (version !== 2 && version !== 3) {
    throw badInput('IMAGE_NOT_QCOW2', `${path} is qcow2 version ${version}; only versions 2 and 3 are accepted.`)
  }
  return {
    version,
    externalDataFile,
    backingName: backingOffset === 0n ? undefined : await readBackingName(handle, path, backingOffset, backingSize),
  }
}

async function readBackingName(handle: FileHandle, path: string, offset: bigint, size: number): Promise<string> {
  if (size === 0 || size > MAX_BACKING_NAME || offset > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw badInput('BACKING_INVALID', `${path} has a malformed backing file entry.`)
  }
  const name = Buffer.alloc(size)
  const {bytesRead} = await handle.read(name, 0, size, Number(offset))
  if (bytesRead !== size) throw badInput('BACKING_INVALID', `${path} has a truncated backing file name.`)
  return name.toString('utf8')
}
