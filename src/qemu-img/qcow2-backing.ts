/**
 * The fixed part of a qcow2 header (docs/interop/qcow2.txt in qemu), read from bytes in hand:
 * ie-virsh's gate reads it from a descriptor before any tool opens the image, and publish reads
 * it from students' images over SFTP to find the overlays of a base.
 */

const MAGIC = 0x514649fb // "QFI\xfb"
/** Version 2's header is 72 bytes; version 3 adds the feature fields after it. */
export const QCOW2_HEADER_BYTES = 104
const EXTERNAL_DATA_FILE_BIT = 1n << 2n
/** qemu refuses longer backing names too; keeping the same bound means we never parse more. */
export const MAX_BACKING_NAME = 1023

export interface Qcow2Fixed {
  version: number
  /** Where the backing file name is stored, and its length in bytes (0n and 0: none). */
  backingOffset: bigint
  backingSize: number
  /** Incompatible feature bit 2: the guest data lives in another file the header names. */
  externalDataFile: boolean
}

/** The fixed header fields, or undefined when the bytes are too short or not qcow2's magic. */
export function qcow2Fixed(head: Buffer): Qcow2Fixed | undefined {
  if (head.length < 72 || head.readUInt32BE(0) !== MAGIC) return undefined
  const version = head.readUInt32BE(4)
  const incompatible = version === 3 && head.length >= 80 ? head.readBigUInt64BE(72) : 0n
  return {
    version,
    backingOffset: head.readBigUInt64BE(8),
    backingSize: head.readUInt32BE(16),
    externalDataFile: (incompatible & EXTERNAL_DATA_FILE_BIT) !== 0n,
  }
}

/**
 * The backing file name in the first bytes of a qcow2 image. Undefined when the bytes are not
 * a qcow2 header or name no (valid) backing file; a RangeError when the name lies past the
 * bytes given.
 */
export function backingNameOf(head: Buffer): string | undefined {
  const fixed = qcow2Fixed(head)
  if (!fixed) return undefined
  const {backingOffset: offset, backingSize: size} = fixed
  if (offset === 0n || size === 0 || size > MAX_BACKING_NAME) return undefined
  if (offset + BigInt(size) > BigInt(head.length)) throw new RangeError(`The backing file name is at byte ${offset}, past the ${head.length} bytes read.`)
  return head.subarray(Number(offset), Number(offset) + size).toString('utf8')
}

/**
 * The path qemu opens for a backing name: a relative one joined as text to the folder of the
 * name the image was opened by (path_combine). `path.resolve` would drop `link/..` before the
 * kernel sees it, and vet another file than the one qemu reaches when `link` leads elsewhere.
 */
export function qemuBackingPath(imageName: string, backingName: string): string {
  return backingName.startsWith('/') ? backingName : `${imageName.slice(0, imageName.lastIndexOf('/') + 1)}${backingName}`
}
