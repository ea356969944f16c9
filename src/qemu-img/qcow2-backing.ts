/**
 * The backing file name in the first bytes of a qcow2 image (docs/interop/qcow2.txt in qemu),
 * for code that reads a header it was handed rather than opening the image with qemu-img.
 * Undefined when the bytes are not a qcow2 header or name no backing file; a RangeError when
 * the name lies past the bytes given.
 */
export function backingNameOf(head: Buffer): string | undefined {
  if (head.length < 20 || head.readUInt32BE(0) !== 0x514649fb) return undefined
  const offset = head.readBigUInt64BE(8)
  const size = head.readUInt32BE(16)
  // qemu refuses names longer than 1023 bytes.
  if (offset === 0n || size === 0 || size > 1023) return undefined
  if (offset + BigInt(size) > BigInt(head.length)) throw new RangeError(`The backing file name is at byte ${offset}, past the ${head.length} bytes read.`)
  return head.subarray(Number(offset), Number(offset) + size).toString('utf8')
}
