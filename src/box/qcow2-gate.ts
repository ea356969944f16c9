import {badInput, type ShienError} from '../errors.js'
import {qcow2Fixed} from '../qemu-img/qcow2-backing.js'

/** What the gate learnt from a libvirt or qemu box's `box.img`. */
export interface Qcow2Info {
  version: number
  capacityBytes: number
}

/** Header extension types (qemu's docs/interop/qcow2.txt). */
const EXT_END = 0
const EXT_DATA_FILE = 0x44415441
const EXT_BACKING_FORMAT = 0xe2792aca
/** The gate reads at most this much of an image: the header and its extensions sit in the first cluster. */
export const QCOW2_HEAD_LIMIT = 1024 * 1024
const REMAKE = ['Make the image standalone first: qemu-img convert -O qcow2 box.img standalone.img, and package that as box.img.']

/**
 * The security gate for a qcow2 `box.img`: a standalone image, with no backing file (it would
 * be read too, from wherever it names) and no external data file (the guest's data would come
 * from another file). `head` is the start of the file, header extensions included.
 */
export function checkQcow2Header(head: Buffer, name: string): Qcow2Info {
  const fixed = qcow2Fixed(head)
  if (!fixed) throw refuse('QCOW2_NOT_QCOW2', name, 'it does not start with the qcow2 magic "QFI\\xfb"')
  if (fixed.version !== 2 && fixed.version !== 3) throw refuse('QCOW2_NOT_QCOW2', name, `its qcow2 version is ${fixed.version}, not 2 or 3`)
  if (fixed.version === 3 && head.length < 104) throw refuse('QCOW2_NOT_QCOW2', name, 'it ends inside its qcow2 header')
  if (fixed.backingOffset !== 0n || fixed.backingSize !== 0) {
    throw refuse('QCOW2_BACKING_FILE', name, 'it is an overlay with a backing file, which would be read from wherever it names')
  }
  if (fixed.externalDataFile) throw refuse('QCOW2_DATA_FILE', name, 'its data lives in an external data file, which would be read from wherever it names')
  for (const type of extensionTypes(head, fixed.version, name)) {
    if (type === EXT_DATA_FILE) throw refuse('QCOW2_DATA_FILE', name, 'its header names an external data file')
    if (type === EXT_BACKING_FORMAT) throw refuse('QCOW2_BACKING_FILE', name, 'its header names a backing file format, as overlays do')
  }
  const capacity = head.readBigUInt64BE(24)
  if (capacity > BigInt(Number.MAX_SAFE_INTEGER)) throw refuse('QCOW2_NOT_QCOW2', name, 'its header gives an impossible size')
  return {version: fixed.version, capacityBytes: Number(capacity)}
}

/** The types of the header extensions, which follow the header up to an end marker. */
function extensionTypes(head: Buffer, version: number, name: string): number[] {
  let offset = version === 3 ? head.readUInt32BE(100) : 72
  const types: number[] = []
  for (;;) {
    if (offset + 8 > head.length) throw refuse('QCOW2_NOT_QCOW2', name, 'its header extensions do not end inside its first MiB')
    const type = head.readUInt32BE(offset)
    if (type === EXT_END) return types
    types.push(type)
    offset += 8 + Math.ceil(head.readUInt32BE(offset + 4) / 8) * 8
  }
}

function refuse(code: string, name: string, why: string): ShienError {
  return badInput(code, `The disk ${name} was refused: ${why}.`, REMAKE)
}
