// Writes small streamOptimized VMDKs in memory, byte by byte as the format describes them
// (VMware "Virtual Disk Format 1.1": sparse header, embedded descriptor, grain markers,
// metadata markers, footer, end of stream), so tests can make well-formed and broken ones
// without qemu-img.
import {deflateSync} from 'node:zlib'

const SECTOR = 512

/** One thing in the stream after the header, in the order given. */
export type StreamItem =
  /** A grain: deflated `data`, or these exact `deflated` bytes, for sector `lba`. */
  | {grain: number; data?: Buffer; deflated?: Buffer}
  /** A metadata marker (1 GT, 2 GD, 3 footer, other types to break it) and its sectors. */
  | {marker: number; sectors: number; body?: Buffer}

export interface StreamVmdkSpec {
  name: string
  capacitySectors: number
  items: StreamItem[]
  /** Header overrides: the grain size in sectors (default 128), GD offset (default GD_AT_END). */
  grainSectors?: number
  gdOffset?: bigint
  /** Leave out the end-of-stream marker. */
  noEndOfStream?: boolean
}

/** The sparse header (or footer) sector. */
export function sparseHeader(spec: StreamVmdkSpec, gdOffset = spec.gdOffset ?? 0xffffffffffffffffn): Buffer {
  const h = Buffer.alloc(SECTOR)
  h.write('KDMV', 0, 'latin1')
  h.writeUInt32LE(3, 4)
  h.writeUInt32LE((1 << 0) | (1 << 16) | (1 << 17), 8)
  h.writeBigUInt64LE(BigInt(spec.capacitySectors), 12)
  h.writeBigUInt64LE(BigInt(spec.grainSectors ?? 128), 20)
  h.writeBigUInt64LE(1n, 28)
  h.writeBigUInt64LE(20n, 36)
  h.writeUInt32LE(512, 44)
  h.writeBigUInt64LE(0n, 48)
  h.writeBigUInt64LE(gdOffset, 56)
  h.writeBigUInt64LE(128n, 64)
  h.write('\n \r\n', 73, 'latin1')
  h.writeUInt16LE(1, 77)
  return h
}

function descriptor(spec: StreamVmdkSpec): Buffer {
  const text = [
    '# Disk DescriptorFile', 'version=1', 'CID=12345678', 'parentCID=ffffffff', 'createType="streamOptimized"', '',
    '# Extent description', `RW ${spec.capacitySectors} SPARSE "${spec.name}"`, '',
  ].join('\n')
  const buf = Buffer.alloc(20 * SECTOR)
  buf.write(text, 0, 'latin1')
  return buf
}

function padded(buf: Buffer): Buffer {
  const rest = buf.length % SECTOR
  return rest === 0 ? buf : Buffer.concat([buf, Buffer.alloc(SECTOR - rest)])
}

function item(it: StreamItem): Buffer {
  if ('grain' in it) {
    const deflated = it.deflated ?? deflateSync(it.data ?? Buffer.alloc(0))
    const head = Buffer.alloc(12)
    head.writeBigUInt64LE(BigInt(it.grain), 0)
    head.writeUInt32LE(deflated.length, 8)
    return padded(Buffer.concat([head, deflated]))
  }
  const marker = Buffer.alloc(SECTOR)
  marker.writeBigUInt64LE(BigInt(it.sectors), 0)
  marker.writeUInt32LE(it.marker, 12)
  return Buffer.concat([marker, it.body ?? Buffer.alloc(it.sectors * SECTOR)])
}

/** The whole file. */
export function streamVmdk(spec: StreamVmdkSpec): Buffer {
  const head = Buffer.concat([sparseHeader(spec), descriptor(spec)])
  const parts = [head, Buffer.alloc(128 * SECTOR - head.length), ...spec.items.map(item)]
  if (!spec.noEndOfStream) parts.push(Buffer.alloc(SECTOR))
  return Buffer.concat(parts)
}

/** A footer marker and footer, as VirtualBox ends its exports (before the end-of-stream marker). */
export function footerItem(spec: StreamVmdkSpec, gdSector = 200n): StreamItem {
  return {marker: 3, sectors: 1, body: sparseHeader(spec, gdSector)}
}
