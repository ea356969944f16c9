// A blade's storage in a temp folder (a published base, a student's folders) and deltas made
// from real disks or byte by byte, for the tests of the blade side of a delta push.
import {execFile} from 'node:child_process'
import {createHash} from 'node:crypto'
import {chmod, mkdir, mkdtemp, open, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {deflateSync} from 'node:zlib'

import type {BladeContext} from '../../src/blade/caller.js'
import {DEFAULT_BLADE_CONFIG} from '../../src/config/blade-config.js'
import {boxesPaths, userPaths} from '../../src/config/storage-layout.js'
import {DeltaWriter} from '../../src/delta/delta-file.js'
import {manifestOfImage} from '../../src/delta/image-manifest.js'
import {BLOCK_SIZE, blockLengthOf, type BlockManifest} from '../../src/delta/manifest.js'

const run = promisify(execFile)

/** The student the blade steps are checked for: a uid no file here belongs to by accident. */
export const STUDENT = {uid: 4242, gid: 4242}
export const ACCOUNT = 'e100001'

export interface BladeStorage {
  /** The temp folder; remove it with `rm -r`. */
  dir: string
  root: string
  ctx: BladeContext
}

/**
 * A storage root as a blade lays it out: `boxes/` root-owned and 0755, the student's
 * `users/<account>/{incoming,images}`. The temp folder is made traversable (0755) so checks run
 * as STUDENT see what a student on a blade would.
 */
export async function makeBladeStorage(): Promise<BladeStorage> {
  const dir = await mkdtemp(join(tmpdir(), 'shien-delta-blade-'))
  await chmod(dir, 0o755)
  const root = join(dir, 'root')
  await mkdir(boxesPaths(root).root, {recursive: true, mode: 0o755})
  const paths = userPaths(root, ACCOUNT)
  await mkdir(paths.incoming, {recursive: true, mode: 0o700})
  await mkdir(paths.images, {recursive: true, mode: 0o700})
  return {dir, root, ctx: {account: ACCOUNT, config: {...DEFAULT_BLADE_CONFIG, storageRoot: root}, paths}}
}

/** Publishes `qcow2` as the base of box@version the way `shien box publish` leaves it: 0444 in 0755 folders. */
export async function publishBase(root: string, box: string, version: string, qcow2: string): Promise<string> {
  const dir = boxesPaths(root).versionDir(box, version)
  await mkdir(dir, {recursive: true, mode: 0o755})
  const path = join(dir, 'libvirt.qcow2')
  await run('cp', ['--sparse=always', qcow2, path])
  await chmod(path, 0o444)
  return path
}

export async function sha256Of(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex')
}

/**
 * The delta from `base` to the qcow2 `next`, as the laptop would send it: every block whose
 * hash differs, zero blocks as zero records, data blocks raw or (every other one) deflated.
 */
export async function deltaBetween(base: BlockManifest, next: string, dest: string, scratch: string): Promise<{manifest: BlockManifest; records: number}> {
  const manifest = await manifestOfImage(next, {format: 'qcow2'})
  const raw = join(scratch, 'next.raw')
  await run('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', next, raw])
  const file = await open(raw, 'r')
  const writer = await DeltaWriter.create(dest, {virtualSize: manifest.virtualSize, baseDiskHash: base.diskHash})
  let records = 0
  try {
    for (let i = 0; i < manifest.blockCount; i++) {
      const same = i < base.blockCount && base.isZero(i) === manifest.isZero(i) && (manifest.isZero(i) || base.blockHash(i)!.equals(manifest.blockHash(i)!))
      if (same) continue
      if (manifest.isZero(i)) {
        await writer.add({index: i, kind: 'zero', payload: Buffer.alloc(0)})
      } else {
        const data = Buffer.alloc(blockLengthOf(manifest.virtualSize, i))
        await file.read(data, 0, data.length, i * BLOCK_SIZE)
        await writer.add(records % 2 === 0 ? {index: i, kind: 'raw', payload: data} : {index: i, kind: 'deflate', payload: deflateSync(data)})
      }
      records++
    }
    await writer.finish(manifest.diskHash)
  } finally {
    await file.close()
    await rm(raw, {force: true})
  }
  return {manifest, records}
}

/** A record as it goes into a hand-made delta: any index, kind code and payload. */
export interface RawRecord {
  index: number
  kind: number
  payload: Buffer
}

/**
 * A delta file byte by byte (docs/delta.md), with a valid trailer checksum, so a test can send
 * what DeltaWriter would never write: blocks past the disk, repeated, a wrong block size.
 */
export function handMadeDelta(h: {virtualSize: number; baseDiskHash: Buffer; newDiskHash: Buffer; blockSize?: number}, records: RawRecord[]): Buffer {
  const head = Buffer.alloc(88)
  head.write('SHIENDLT', 0, 'latin1')
  head.writeUInt32BE(1, 8)
  head.writeUInt32BE(h.blockSize ?? BLOCK_SIZE, 12)
  head.writeBigUInt64BE(BigInt(h.virtualSize), 16)
  h.baseDiskHash.copy(head, 24)
  const body = records.map((r) => {
    const rh = Buffer.alloc(13)
    rh.writeBigUInt64BE(BigInt(r.index), 0)
    rh.writeUInt8(r.kind, 8)
    rh.writeUInt32BE(r.payload.length, 9)
    return Buffer.concat([rh, r.payload])
  })
  const end = Buffer.alloc(16)
  end.writeBigUInt64BE(0xffff_ffff_ffff_ffffn, 0)
  end.writeBigUInt64BE(BigInt(records.length), 8)
  // The checksum covers the header with its new-disk-hash slot as zeroes.
  const sum = createHash('sha256').update(head).update(Buffer.concat(body)).update(end).digest()
  h.newDiskHash.copy(head, 56)
  return Buffer.concat([head, ...body, end, sum])
}

