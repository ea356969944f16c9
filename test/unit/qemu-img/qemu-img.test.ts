import {randomBytes} from 'node:crypto'
import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {QemuImgError, failureOf, lastPercent, qemuImgConvert, qemuImgInfo} from '../../../src/qemu-img/qemu-img.js'

describe('the qemu-img adapter (real qemu-img)', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shien-qemu-img-'))
  })
  afterAll(async () => {
    await execa('umount', [join(dir, 'small')], {reject: false})
    await rm(dir, {recursive: true, force: true})
  })

  it('reads the last percentage of -p output and maps stderr to a failure', () => {
    expect(lastPercent('    (0.00/100%)\r    (42.50/100%)\r')).toBe(42.5)
    expect(lastPercent('qemu-img: error')).toBeUndefined()
    expect(failureOf("qemu-img: error while writing at byte 0: No space left on device")).toBe('disk-full')
    expect(failureOf('qemu-img: Could not open x: Failed to get shared "write" lock')).toBe('in-use')
    expect(failureOf('anything', true)).toBe('timed-out')
    expect(failureOf('qemu-img: Could not open x: Permission denied')).toBe('failed')
  })

  it('converts with progress, and reads the chain back', async () => {
    const raw = join(dir, 'disk.raw')
    await writeFile(raw, randomBytes(4 << 20))
    const percents: number[] = []
    await qemuImgConvert({src: raw, srcFormat: 'raw', dest: join(dir, 'disk.qcow2'), destFormat: 'qcow2', options: ['compat=1.1'], onPercent: (p) => percents.push(p)})
    expect(percents.at(-1)).toBe(100)
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', join(dir, 'disk.qcow2'), '-F', 'qcow2', join(dir, 'top.qcow2')])
    const layers = await qemuImgInfo(join(dir, 'top.qcow2'), {format: 'qcow2', backingChain: true})
    expect(layers.map((l) => [l.format, l.virtualSize, l.backingFormat])).toEqual([
      ['qcow2', 4 << 20, 'qcow2'],
      ['qcow2', 4 << 20, undefined],
    ])
    expect(layers[0].backingFile).toBe(join(dir, 'disk.qcow2'))
  })

  it('says the disk is full when the target filesystem is (ENOSPC on a 1 MiB tmpfs)', async () => {
    const small = join(dir, 'small')
    await mkdir(small)
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', small])
    const raw = join(dir, 'big.raw')
    await writeFile(raw, randomBytes(8 << 20))
    const error = await qemuImgConvert({src: raw, srcFormat: 'raw', dest: join(small, 'out.qcow2'), destFormat: 'qcow2'}).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(QemuImgError)
    expect((error as QemuImgError).failure).toBe('disk-full')
    expect((error as QemuImgError).line).toMatch(/No space left/)
  })

  it('runs as another user when asked, and never probes the format', async () => {
    const secret = join(dir, 'root-only.qcow2')
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', secret, '1M'])
    await execa('chmod', ['0600', secret])
    const error = await qemuImgInfo(secret, {format: 'qcow2', as: {uid: 65534, gid: 65534}}).catch((e: unknown) => e)
    expect((error as QemuImgError).line).toMatch(/Permission denied/)
    const raw = join(dir, 'plain.raw')
    await writeFile(raw, Buffer.alloc(1 << 20))
    await expect(qemuImgInfo(raw, {format: 'qcow2'})).rejects.toBeInstanceOf(QemuImgError)
  })
})
