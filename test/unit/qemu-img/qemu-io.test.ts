import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {backingNameOf} from '../../../src/qemu-img/qcow2-backing.js'
import {QemuImgError, qemuImgCreateOverlay, qemuImgInfo} from '../../../src/qemu-img/qemu-img.js'
import {qemuIoWrite} from '../../../src/qemu-img/qemu-io.js'

const K = 1024

describe('qemu-io writes and qemu-img overlays (real qemu-io and qemu-img)', () => {
  let dir: string
  let base: string
  let overlay: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shien-qemu-io-'))
    base = join(dir, 'base.qcow2')
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', base, '1M'])
    await execa('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x11 0 1M', base])
    overlay = join(dir, 'overlay.qcow2')
    await qemuImgCreateOverlay({path: overlay, backing: base, size: 1024 * K})
  })
  afterAll(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('creates an overlay whose header declares the backing format', async () => {
    const [layer] = await qemuImgInfo(overlay, {format: 'qcow2'})
    expect(layer).toMatchObject({backingFile: base, backingFormat: 'qcow2', virtualSize: 1024 * K})
  })

  it('writes data from files and zeroes over the base, and nothing else', async () => {
    const data = join(dir, 'data.raw')
    await writeFile(data, Buffer.alloc(128 * K, 0x22))
    await qemuIoWrite(overlay, [{kind: 'data', offset: 64 * K, length: 128 * K, file: data}, {kind: 'zero', offset: 512 * K, length: 64 * K}])
    const raw = join(dir, 'out.raw')
    await execa('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', overlay, raw])
    const bytes = await readFile(raw)
    expect(bytes.subarray(0, 64 * K).every((b) => b === 0x11)).toBe(true)
    expect(bytes.subarray(64 * K, 192 * K).every((b) => b === 0x22)).toBe(true)
    expect(bytes.subarray(512 * K, 576 * K).every((b) => b === 0)).toBe(true)
    expect(bytes.subarray(576 * K).every((b) => b === 0x11)).toBe(true)
  })

  it('fails when a write fails, even after others succeeded (a write past the disk, a missing file)', async () => {
    const data = join(dir, 'one.raw')
    await writeFile(data, Buffer.alloc(64 * K, 1))
    const past = await qemuIoWrite(overlay, [{kind: 'data', offset: 0, length: 64 * K, file: data}, {kind: 'data', offset: 1024 * K, length: 64 * K, file: data}]).catch((e: unknown) => e)
    expect(past).toBeInstanceOf(QemuImgError)
    expect((past as QemuImgError).line).toMatch(/write failed/)
    const missing = await qemuIoWrite(overlay, [{kind: 'data', offset: 0, length: 64 * K, file: join(dir, 'absent.raw')}]).catch((e: unknown) => e)
    expect(missing).toBeInstanceOf(QemuImgError)
  })

  it('reads data files in a folder whose path has blanks (a storage root may)', async () => {
    const folder = join(dir, 'work folder with blanks')
    await mkdir(folder)
    await writeFile(join(folder, 'run-0.raw'), Buffer.alloc(64 * K, 0x33))
    await qemuIoWrite(overlay, [{kind: 'data', offset: 256 * K, length: 64 * K, file: join(folder, 'run-0.raw')}])
    const {stdout} = await execa('qemu-io', ['-f', 'qcow2', '-c', `read -P 0x33 ${256 * K} ${64 * K}`, overlay])
    expect(stdout).toMatch(/read 65536\/65536 bytes/)
    expect(stdout).not.toMatch(/Pattern verification failed/)
  })

  it('refuses names qemu-io would split and files in two folders, before starting it', async () => {
    await expect(qemuIoWrite(overlay, [{kind: 'data', offset: 0, length: 512, file: '/tmp/a b'}])).rejects.toThrow(RangeError)
    await expect(qemuIoWrite(overlay, [
      {kind: 'data', offset: 0, length: 512, file: '/tmp/a/one.raw'}, {kind: 'data', offset: 512, length: 512, file: '/tmp/b/two.raw'},
    ])).rejects.toThrow(/one folder/)
    await expect(qemuIoWrite(overlay, [{kind: 'zero', offset: -512, length: 512}])).rejects.toThrow(RangeError)
  })

  it('reads the backing name from a header it is handed', async () => {
    expect(backingNameOf(await readFile(overlay))).toBe(base)
    expect(backingNameOf(await readFile(base))).toBeUndefined()
    expect(backingNameOf(Buffer.from('not a qcow2 header at all'))).toBeUndefined()
    const head = (await readFile(overlay)).subarray(0, 200)
    expect(() => backingNameOf(head.subarray(0, 100))).toThrow(RangeError)
  })
})
