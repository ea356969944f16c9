/**
 * The blade side of a delta push on real qemu-img and qemu-io, called directly on a storage
 * root laid out like a blade's in a temp folder: the base step (published, cached and computed
 * manifests), apply-delta against a full conversion of the same disk, and every refusal of
 * untrusted input leaving nothing staged and the slot's image as it was.
 */
import {execFile} from 'node:child_process'
import {chmod, chown, copyFile, lstat, mkdir, open, readdir, readFile, rename, symlink, utimes, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {applyDelta, type ApplyDeltaRequest} from '../../src/blade/apply-delta.js'
import {baseManifest, describeBase} from '../../src/blade/base-manifest.js'
import {findBase} from '../../src/blade/base-box.js'
import {baseChangedFinding} from '../../src/audit/base-check.js'
import {stagedImage} from '../../src/blade/slot-files.js'
import {boxesPaths} from '../../src/config/storage-layout.js'
import {manifestOfImage} from '../../src/delta/image-manifest.js'
import {BLOCK_SIZE, encodeManifest, parseManifest, type BlockManifest} from '../../src/delta/manifest.js'
import {ShienError} from '../../src/errors.js'
import {qemuImgInfo} from '../../src/qemu-img/qemu-img.js'
import {convertRaw, PATTERN, writePatternDisk} from '../support/pattern-disk.js'
import {deltaBetween, handMadeDelta, makeBladeStorage, publishBase, sha256Of, STUDENT, type BladeStorage} from '../support/delta-blade.js'

const run = promisify(execFile)
const BOX = 'os101/debian12'
const V1 = '2026.1.0'
const V2 = '2026.2.0'
const M = 1024 * 1024

describe('blade: base and apply-delta', () => {
  let s: BladeStorage
  let basePath: string
  let base2Path: string
  let baseM: BlockManifest
  let newQcow2: string
  let newM: BlockManifest
  let deltaFile: string
  let records: number
  const o = {student: STUDENT}
  const slotImage = () => s.ctx.paths.image('01')
  const request = (over: Partial<ApplyDeltaRequest> = {}): ApplyDeltaRequest => ({name: 'web', slot: '01', box: BOX, version: V1, ...over})
  const upload = (bytes: Buffer | string, name = 'web') => writeFile(join(s.ctx.paths.incoming, `${name}.delta`), bytes)

  beforeAll(async () => {
    s = await makeBladeStorage()
    const raw = await writePatternDisk(s.dir, 'base.raw')
    basePath = await publishBase(s.root, BOX, V1, await convertRaw(raw, join(s.dir, 'base.qcow2'), 'qcow2'))
    baseM = await manifestOfImage(basePath, {format: 'qcow2'})
    // The student's disk: data changed, data zeroed, a run of new data where the base is empty, the short last block.
    const f = await open(raw, 'r+')
    await f.write(Buffer.alloc(3000, 0x31), 0, 3000, 10_000)
    await f.write(Buffer.alloc(BLOCK_SIZE), 0, BLOCK_SIZE, 2 * M + 512 * 1024)
    await f.write(Buffer.alloc(3 * BLOCK_SIZE + 77, 0x42), 0, 3 * BLOCK_SIZE + 77, 7 * M)
    await f.write(Buffer.from('end'), 0, 3, PATTERN.size - 100)
    await f.close()
    newQcow2 = await convertRaw(raw, join(s.dir, 'new.qcow2'), 'qcow2')
    deltaFile = join(s.dir, 'web.delta')
    ;({manifest: newM, records} = await deltaBetween(baseM, newQcow2, deltaFile, s.dir))
    // Version 2 is another disk: the pattern with its first block changed.
    await f.close().catch(() => undefined)
    const raw2 = await writePatternDisk(s.dir, 'base2.raw')
    const f2 = await open(raw2, 'r+')
    await f2.write(Buffer.alloc(512, 0x77), 0, 512, 0)
    await f2.close()
    base2Path = await publishBase(s.root, BOX, V2, await convertRaw(raw2, join(s.dir, 'base2.qcow2'), 'qcow2'))
    // The slot's current image, which nothing here may change.
    await writeFile(slotImage(), 'the previous image\n')
  }, 120_000)

  afterAll(async () => {
    if (s) await run('rm', ['-rf', s.dir])
  })

  /** Nothing staged, no work folders left, the slot's previous image as it was. */
  async function expectNothingStaged(): Promise<void> {
    expect(await readdir(s.ctx.paths.images)).toEqual(['01.qcow2'])
    expect(await readFile(slotImage(), 'utf8')).toBe('the previous image\n')
    expect((await readdir(s.ctx.paths.incoming)).filter((n) => n.startsWith('.'))).toEqual([])
  }

  async function refused(promise: Promise<unknown>, code: string, exitCode = 3): Promise<ShienError> {
    const error = await promise.then(() => undefined, (e: unknown) => e)
    expect(error).toBeInstanceOf(ShienError)
    expect((error as ShienError).code).toBe(code)
    expect((error as ShienError).exitCode).toBe(exitCode)
    return error as ShienError
  }

  it('the delta holds only the changed blocks', () => {
    expect(records).toBeGreaterThan(3)
    expect(records).toBeLessThan(12)
    expect(newM.diskHash.equals(baseM.diskHash)).toBe(false)
  })

  describe('base', () => {
    it('hands out the manifest of the published base, computed once and then cached in the student\'s storage', async () => {
      const first = await describeBase(s.ctx, BOX, V1, o)
      expect(first).toMatchObject({available: true, box: BOX, version: V1, path: basePath, virtualSize: PATTERN.size, diskHash: baseM.diskHash.toString('hex')})
      if (!first.available) throw new Error('unreachable')
      expect(parseManifest(Buffer.from(first.manifest, 'base64')).diskHash.equals(baseM.diskHash)).toBe(true)
      expect(await readdir(s.ctx.paths.manifestCache)).toHaveLength(1)
      const found = await findBase(s.ctx, BOX, V1, o)
      if (!found.available) throw new Error('unreachable')
      expect((await baseManifest(s.ctx, found.base, o)).source).toBe('cache')
    })

    it('recomputes when the base changed since the cached manifest (and never serves the stale one)', async () => {
      const cache = s.ctx.paths.manifestCache
      const [old] = await readdir(cache)
      // A forged cache entry for the current file would only make the push fail later; a new
      // file (new inode, mtime) gets a new key, so the old entry is not used for it.
      const copy = `${basePath}.new`
      await run('cp', ['--sparse=always', basePath, copy])
      await chmod(copy, 0o444)
      await utimes(copy, new Date(), new Date(Date.now() + 5000))
      await rename(copy, basePath)
      const found = await findBase(s.ctx, BOX, V1, o)
      if (!found.available) throw new Error('unreachable')
      expect((await baseManifest(s.ctx, found.base, o)).source).toBe('computed')
      expect((await readdir(cache)).sort()).toEqual(expect.arrayContaining([old]))
      expect(await readdir(cache)).toHaveLength(2)
    })

    it('uses libvirt.manifest published beside the base, and ignores one older than the base', async () => {
      const published = join(boxesPaths(s.root).versionDir(BOX, V1), 'libvirt.manifest')
      await writeFile(published, encodeManifest(baseM), {mode: 0o444})
      // Copied after the base, as a publish does (the test before set the base's mtime ahead).
      await utimes(published, new Date(), new Date(Date.now() + 10_000))
      const found = await findBase(s.ctx, BOX, V1, o)
      if (!found.available) throw new Error('unreachable')
      expect((await baseManifest(s.ctx, found.base, o)).source).toBe('published')
      await utimes(published, new Date(0), new Date(0))
      expect((await baseManifest(s.ctx, found.base, o)).source).toBe('cache')
      await run('rm', ['-f', published])
    })

    it('says in one line why a base is not there', async () => {
      expect(await describeBase(s.ctx, 'os101/other', V1, o)).toEqual({available: false, reason: 'os101/other is not published on this blade'})
      expect(await describeBase(s.ctx, BOX, '2020.1.0', o)).toEqual({available: false, reason: `the blade has no version 2020.1.0 of ${BOX}`})
      await mkdir(boxesPaths(s.root).versionDir(BOX, '2026.3.0'), {mode: 0o755})
      expect(await describeBase(s.ctx, BOX, '2026.3.0', o)).toEqual({available: false, reason: `${BOX} 2026.3.0 has no libvirt base (libvirt.qcow2) on this blade`})
    })
  })

  describe('apply-delta', () => {
    it('makes a staged qcow2 overlay of the base equal to a full conversion of the same disk', async () => {
      await copyFile(deltaFile, join(s.ctx.paths.incoming, 'web.delta'))
      const before = await sha256Of(basePath)
      const result = await applyDelta(s.ctx, request({sha256: await sha256Of(deltaFile)}), o)
      const staged = stagedImage(s.ctx, '01')
      expect(result).toEqual({image: staged, disk: 'web.delta', virtualSize: PATTERN.size, ignoredDisks: []})
      await run('qemu-img', ['compare', '-f', 'qcow2', '-F', 'qcow2', staged, newQcow2])
      const [top, backing] = await qemuImgInfo(staged, {format: 'qcow2', backingChain: true})
      expect(top).toMatchObject({backingFile: basePath, backingFormat: 'qcow2'})
      expect(backing.backingFile).toBeUndefined()
      // The overlay holds the changed blocks, not the disk (the base has about 1 MiB of data).
      expect(top.actualSize).toBeLessThan(1 * M)
      expect(await sha256Of(basePath)).toBe(before)
      expect(await readFile(slotImage(), 'utf8')).toBe('the previous image\n')
      expect((await readdir(s.ctx.paths.incoming)).filter((n) => n.startsWith('.'))).toEqual([])
      // What the overlay was made on, for shien audit: kept in the staged record, moved by install.
      const record = JSON.parse(await readFile(join(s.ctx.paths.images, '.01.new.json'), 'utf8'))
      expect(record.base).toMatchObject({box: BOX, version: V1, path: basePath, diskHash: baseM.diskHash.toString('hex'), ino: String((await lstat(basePath)).ino)})
      const boxesDir = boxesPaths(s.root).root
      const ref = {image: staged, account: 'e100001', slot: '01'}
      expect(await baseChangedFinding(ref, [basePath], boxesDir)).toBeUndefined()
      // The base replaced by a copy (same bytes, another file): the overlay's base changed.
      const copy = `${basePath}.copy`
      await run('cp', ['--sparse=always', '--preserve=mode', basePath, copy])
      await rename(copy, basePath)
      expect(await baseChangedFinding(ref, [basePath], boxesDir)).toMatchObject({code: 'base-changed', severity: 'high', detail: {base: basePath, box: BOX, version: V1}})
      await run('rm', ['-f', staged, join(s.ctx.paths.images, '.01.new.json')])
    })

    it('writes many runs over several qemu-io batches the same way', async () => {
      const {writeDeltaRecords} = await import('../../src/blade/delta-writes.js')
      const {readDelta} = await import('../../src/delta/delta-file.js')
      const image = join(s.dir, 'batched.qcow2')
      await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', basePath, '-F', 'qcow2', image])
      const work = join(s.dir, 'batch-work')
      await mkdir(work)
      const {records: recs} = await readDelta(deltaFile)
      const written = await writeDeltaRecords(image, PATTERN.size, recs, {work, batchBytes: 1, runBytes: BLOCK_SIZE})
      expect(written.blocks).toBe(records)
      await run('qemu-img', ['compare', '-f', 'qcow2', '-F', 'qcow2', image, newQcow2])
      expect(await readdir(work)).toEqual([])
    })
  })

  describe('refuses untrusted input, with nothing staged and the slot untouched', () => {
    const good = () => ({virtualSize: PATTERN.size, baseDiskHash: baseM.diskHash, newDiskHash: newM.diskHash})
    const block = (n = BLOCK_SIZE, byte = 1) => Buffer.alloc(n, byte)

    it('a block past the virtual size', async () => {
      await upload(handMadeDelta(good(), [{index: Math.ceil(PATTERN.size / BLOCK_SIZE), kind: 1, payload: block(1536)}]))
      await refused(applyDelta(s.ctx, request(), o), 'DELTA_BLOCK_RANGE')
      await expectNothingStaged()
    })

    it('a repeated block, and blocks out of order (overlapping writes)', async () => {
      await upload(handMadeDelta(good(), [{index: 5, kind: 1, payload: block()}, {index: 5, kind: 0, payload: Buffer.alloc(0)}]))
      await refused(applyDelta(s.ctx, request(), o), 'DELTA_BLOCK_ORDER')
      await expectNothingStaged()
      await upload(handMadeDelta(good(), [{index: 9, kind: 1, payload: block()}, {index: 3, kind: 1, payload: block()}]))
      await refused(applyDelta(s.ctx, request(), o), 'DELTA_BLOCK_ORDER')
      await expectNothingStaged()
    })

    it('a wrong block size, in the header or in a record', async () => {
      await upload(handMadeDelta({...good(), blockSize: 4096}, [{index: 0, kind: 1, payload: block(4096)}]))
      await refused(applyDelta(s.ctx, request(), o), 'DELTA_BLOCK_SIZE')
      await expectNothingStaged()
      await upload(handMadeDelta(good(), [{index: 0, kind: 1, payload: block(4096)}]))
      await refused(applyDelta(s.ctx, request(), o), 'DELTA_BLOCK_LENGTH')
      await expectNothingStaged()
    })

    it('blocks that do not make the disk the laptop hashed, after writing them', async () => {
      await upload(handMadeDelta(good(), [{index: 0, kind: 1, payload: block()}]))
      const error = await refused(applyDelta(s.ctx, request(), o), 'DELTA_HASH_MISMATCH')
      expect(error.message).toContain(newM.diskHash.toString('hex'))
      await expectNothingStaged()
    })

    it('a delta that is not the one sent (sha256), or cut short', async () => {
      const bytes = await readFile(deltaFile)
      await upload(bytes)
      await refused(applyDelta(s.ctx, request({sha256: '0'.repeat(64)}), o), 'UPLOAD_CORRUPT', 5)
      await upload(bytes.subarray(0, bytes.length - 40))
      await refused(applyDelta(s.ctx, request(), o), 'DELTA_TRUNCATED')
      await expectNothingStaged()
    })

    it('a delta made for another version', async () => {
      await upload(await readFile(deltaFile))
      const error = await refused(applyDelta(s.ctx, request({version: V2}), o), 'DELTA_WRONG_BASE')
      expect(error.message).toContain('another version')
      await expectNothingStaged()
    })

    it('a base path outside <root>/boxes, by name or through a symlinked folder', async () => {
      await upload(await readFile(deltaFile))
      await refused(applyDelta(s.ctx, request({box: '../users/x'}), o), 'BAD_BOX_NAME', 2)
      await refused(applyDelta(s.ctx, request({version: '../../users'}), o), 'BAD_VERSION', 2)
      const outside = join(s.dir, 'outside', '2026.9.0')
      await mkdir(outside, {recursive: true})
      await copyFile(basePath, join(outside, 'libvirt.qcow2'))
      await symlink(outside, boxesPaths(s.root).versionDir(BOX, '2026.9.0'))
      await refused(applyDelta(s.ctx, request({version: '2026.9.0'}), o), 'BASE_SYMLINK')
      await refused(describeBase(s.ctx, BOX, '2026.9.0', o), 'BASE_SYMLINK')
      await expectNothingStaged()
    })

    it('a base that is a symlink', async () => {
      const dir = boxesPaths(s.root).versionDir(BOX, '2026.8.0')
      await mkdir(dir, {mode: 0o755})
      await symlink(basePath, join(dir, 'libvirt.qcow2'))
      await upload(await readFile(deltaFile))
      await refused(applyDelta(s.ctx, request({version: '2026.8.0'}), o), 'BASE_SYMLINK')
      await expectNothingStaged()
    })

    it('a base the student may write: by mode, by owning it, or through its folder', async () => {
      await upload(await readFile(deltaFile))
      await chmod(base2Path, 0o666)
      await refused(applyDelta(s.ctx, request({version: V2}), o), 'BASE_WRITABLE')
      await chmod(base2Path, 0o644)
      await chown(base2Path, STUDENT.uid, STUDENT.gid)
      await refused(describeBase(s.ctx, BOX, V2, o), 'BASE_WRITABLE')
      await chown(base2Path, 0, 0)
      const dir = boxesPaths(s.root).versionDir(BOX, V2)
      await chmod(dir, 0o777)
      await refused(describeBase(s.ctx, BOX, V2, o), 'BASE_WRITABLE')
      await chmod(dir, 0o755)
      await chmod(base2Path, 0o444)
      expect((await describeBase(s.ctx, BOX, V2, o)).available).toBe(true)
      await expectNothingStaged()
    })

    it('a base that is not a standalone qcow2', async () => {
      const dir = boxesPaths(s.root).versionDir(BOX, '2026.7.0')
      await mkdir(dir, {mode: 0o755})
      await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', basePath, '-F', 'qcow2', join(dir, 'libvirt.qcow2')])
      await chmod(join(dir, 'libvirt.qcow2'), 0o444)
      await refused(describeBase(s.ctx, BOX, '2026.7.0', o), 'BASE_NOT_STANDALONE')
    })

    it('a base that is not on the blade (exit 6, the laptop pushes the whole box)', async () => {
      await upload(await readFile(deltaFile))
      await refused(applyDelta(s.ctx, request({version: '2020.1.0'}), o), 'BASE_UNAVAILABLE', 6)
      await expectNothingStaged()
      expect((await lstat(join(s.ctx.paths.incoming, 'web.delta'))).isFile()).toBe(true)
    })
  })
})
