import {createHash} from 'node:crypto'
import {existsSync} from 'node:fs'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Readable} from 'node:stream'
import {deflateSync} from 'node:zlib'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {writeBoxDelta, writeDelta} from '../../../src/box/box-delta.js'
import {inspectBox} from '../../../src/box/inspect.js'
import {vmdkStreamBlocks} from '../../../src/box/vmdk-stream-blocks.js'
import {readDelta} from '../../../src/delta/delta-file.js'
import {BLOCK_SIZE, type BlockManifest} from '../../../src/delta/manifest.js'
import {manifestOfRawStream} from '../../../src/delta/manifest-builder.js'
import {applyDelta, CHANGED, deriveDisk, patternDisk, vmdkOfRaw} from '../../support/delta-disks.js'
import {makeBox} from '../../support/make-box.js'

const NAME = 'box-disk001.vmdk'
let dir: string
let base: Buffer
let baseManifest: BlockManifest
let student: Buffer

const manifestOf = (raw: Buffer) => manifestOfRawStream(Readable.from([raw]), raw.length)
const blocksOf = (vmdk: Buffer) => vmdkStreamBlocks(Readable.from([vmdk]), NAME)

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shien-delta-'))
  base = await patternDisk(dir)
  baseManifest = await manifestOf(base)
  student = deriveDisk(base)
})
afterAll(() => rm(dir, {recursive: true, force: true}))

describe('the delta of a disk against a base manifest', () => {
  it('holds exactly the changed blocks, and the base plus the delta is the new disk', async () => {
    const path = join(dir, 'a.delta')
    const stats = await writeDelta(blocksOf(vmdkOfRaw(student)), baseManifest, path)
    const {disk, kinds, payloads} = await applyDelta(base, path)
    expect(disk.equals(student)).toBe(true)
    expect(kinds).toEqual(new Map([
      [CHANGED.edited, 'deflate'],
      [CHANGED.zeroed, 'zero'],
      [CHANGED.filled, 'raw'],
      [CHANGED.last, 'deflate'],
    ]))
    // The grain goes as the VMDK stores it, not compressed again.
    expect(payloads.get(CHANGED.edited)).toEqual(deflateSync(student.subarray(0, BLOCK_SIZE)))
    expect(stats).toMatchObject({changedBlocks: 3, zeroedBlocks: 1, virtualSize: base.length})
    const {header, records} = await readDelta(path)
    for await (const _record of records) {
      // read to the end, so the reader closes the file
    }
    expect(header.baseDiskHash).toEqual(baseManifest.diskHash)
    expect(header.newDiskHash).toEqual((await manifestOf(student)).diskHash)
    expect(stats.newDiskHash).toEqual(header.newDiskHash)
  })

  it('is empty for the base itself, and is the whole disk against an empty base', async () => {
    const same = join(dir, 'same.delta')
    expect(await writeDelta(blocksOf(vmdkOfRaw(base)), baseManifest, same)).toMatchObject({changedBlocks: 0, zeroedBlocks: 0})
    expect((await applyDelta(base, same)).kinds.size).toBe(0)

    const empty = await manifestOf(Buffer.alloc(base.length))
    const all = join(dir, 'all.delta')
    await writeDelta(blocksOf(vmdkOfRaw(student)), empty, all)
    expect((await applyDelta(Buffer.alloc(base.length), all)).disk.equals(student)).toBe(true)
  })

  it('removes its file when the disk does not read to its end', async () => {
    const vmdk = vmdkOfRaw(student)
    const path = join(dir, 'cut.delta')
    await expect(writeDelta(blocksOf(vmdk.subarray(0, vmdk.length - 5000)), baseManifest, path)).rejects.toMatchObject({code: 'VMDK_TRUNCATED'})
    expect(existsSync(path)).toBe(false)
  })

  it('refuses a disk of another size than the base', async () => {
    const bigger = Buffer.concat([student, Buffer.alloc(BLOCK_SIZE)])
    await expect(writeDelta(blocksOf(vmdkOfRaw(bigger)), baseManifest, join(dir, 'big.delta'))).rejects.toThrow(/past the base/)
  })

  it('reads the boot disk inside the box tar, gzip or not', async () => {
    for (const gzip of [false, true]) {
      const boxPath = await makeBox(dir, `student-${gzip}.box`, {gzip, disks: [{name: NAME, bytes: vmdkOfRaw(student), capacityBytes: student.length}]})
      const box = await inspectBox(boxPath)
      const path = join(dir, `box-${gzip}.delta`)
      await writeBoxDelta(boxPath, box.disks[0], baseManifest, path)
      const applied = await applyDelta(base, path)
      expect(createHash('sha256').update(applied.disk).digest('hex')).toBe(createHash('sha256').update(student).digest('hex'))
    }
  })
})
