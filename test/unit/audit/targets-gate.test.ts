/** Which images an audit covers, and the gate that refuses unsafe ones, on real files and qemu-img images. */
import {mkdir, mkdtemp, realpath, rm, symlink, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {gateImage} from '../../../src/audit/image-gate.js'
import {describeTarget, namedImages, publishedBoxes, storageImages} from '../../../src/audit/targets.js'

let root: string
const uid = process.getuid!()
const img = (...p: string[]) => join(root, 'users', 'e195701', 'images', ...p)
const qcow2 = (path: string, ...args: string[]) => execa('qemu-img', ['create', '-q', '-f', 'qcow2', ...args, path, ...(args.includes('-b') ? [] : ['1M'])])

beforeAll(async () => {
  root = await realpath(await mkdtemp(join(tmpdir(), 'shien-audit-targets-')))
  await mkdir(img(), {recursive: true})
  await mkdir(join(root, 'users', 'e195702', 'images'), {recursive: true})
  await mkdir(join(root, 'boxes', 'deb', '1.0'), {recursive: true})
  await mkdir(join(root, 'boxes', 'deb', '2.0'), {recursive: true})
  await qcow2(join(root, 'boxes', 'deb', '1.0', 'box.img'))
  await new Promise((f) => setTimeout(f, 20))
  await qcow2(join(root, 'boxes', 'deb', '2.0', 'box.img'))
  await qcow2(img('01.qcow2'))
  await qcow2(img('02.qcow2'), '-b', join(root, 'boxes', 'deb', '1.0', 'box.img'), '-F', 'qcow2')
  await qcow2(img('03.qcow2'), '-b', '01.qcow2', '-F', 'qcow2')
  await qcow2(img('.04.new.qcow2'))
  await writeFile(img('01.json'), '{}')
  await writeFile(img('raw.qcow2'), 'not a qcow2 at all, just bytes long enough to read a header from. '.repeat(3))
  await qcow2(img('loop-a.qcow2'))
  await qcow2(img('loop-b.qcow2'), '-b', 'loop-a.qcow2', '-F', 'qcow2')
  await execa('qemu-img', ['rebase', '-q', '-u', '-f', 'qcow2', '-F', 'qcow2', '-b', 'loop-b.qcow2', img('loop-a.qcow2')])
  // -u: qemu-img must not try to reach the NBD server; the audit must not either.
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-u', '-b', 'nbd:localhost:10809', '-F', 'raw', img('nbd.qcow2'), '1M'])
  await symlink('../../e195701', join(root, 'users', 'e195702', 'images', 'linked'))
})

afterAll(async () => {
  if (root) await rm(root, {recursive: true, force: true})
})

describe('targets', () => {
  it('lists every *.qcow2 in the accounts\' images folders, but not pushes in progress', async () => {
    expect((await storageImages(root)).map((p) => p.slice(root.length))).toEqual(
      ['01', '02', '03', 'loop-a', 'loop-b', 'nbd', 'raw'].map((n) => `/users/e195701/images/${n}.qcow2`))
    expect(await storageImages(join(root, 'nothing-here'))).toEqual([])
  })

  it('walks named folders without following directory symlinks, and refuses a path that is not there', async () => {
    expect((await namedImages([join(root, 'users')])).length).toBe(7)
    await expect(namedImages([join(root, 'missing.qcow2')])).rejects.toMatchObject({code: 'AUDIT_NO_SUCH_PATH', exitCode: 3})
  })

  it('takes account and slot from the path, and the uid from the system or else the account folder', async () => {
    const t = await describeTarget(img('02.qcow2'), join(root, 'boxes'), async () => undefined)
    expect(t).toEqual({path: img('02.qcow2'), account: 'e195701', slot: '02', scope: {uid, imagesDir: img(), boxesDir: join(root, 'boxes')}})
    expect((await describeTarget(img('raw.qcow2'), '/b', async () => 4242)).slot).toBeUndefined()
    expect((await describeTarget(img('raw.qcow2'), '/b', async () => 4242)).scope.uid).toBe(4242)
    const outside = await describeTarget(join(root, 'boxes', 'deb', '1.0', 'box.img'), '/b', async () => 1)
    expect(outside).toEqual({path: join(root, 'boxes', 'deb', '1.0', 'box.img'), scope: {imagesDir: join(root, 'boxes', 'deb', '1.0'), boxesDir: '/b'}})
  })

  it('lists published boxes newest first, at most max', async () => {
    expect(await publishedBoxes(join(root, 'boxes'), 1)).toEqual({read: [join(root, 'boxes', 'deb', '2.0', 'box.img')], skipped: 1})
  })
})

describe('gateImage', () => {
  const scope = () => ({uid, imagesDir: img(), boxesDir: join(root, 'boxes')})

  it('accepts a plain image, and backing files in its own folder or the published boxes', async () => {
    expect(await gateImage(img('01.qcow2'), scope())).toEqual({ok: true, chain: [], names: []})
    const box = join(root, 'boxes', 'deb', '1.0', 'box.img')
    expect(await gateImage(img('02.qcow2'), scope())).toEqual({ok: true, chain: [box], names: [box]})
    expect(await gateImage(img('03.qcow2'), scope())).toEqual({ok: true, chain: [img('01.qcow2')], names: [img('01.qcow2')]})
  })

  it.each([
    ['another owner', '01.qcow2', () => ({uid: uid + 1}), 'IMAGE_NOT_OWNED'],
    ['not a qcow2', 'raw.qcow2', () => ({}), 'IMAGE_NOT_QCOW2'],
    ['a backing loop', 'loop-b.qcow2', () => ({}), 'BACKING_LOOP'],
    ['a protocol as backing file', 'nbd.qcow2', () => ({}), 'BACKING_OUTSIDE'],
    ['a backing file outside the allowed folders', '02.qcow2', () => ({boxesDir: join(root, 'elsewhere')}), 'BACKING_OUTSIDE'],
  ])('refuses %s', async (_what, name, override, reason) => {
    expect(await gateImage(img(name), {...scope(), ...override()})).toMatchObject({ok: false, reason})
  })

  it('vets the file qemu opens when a link comes before .. in a backing name, not the name tidied up', async () => {
    // Tidied, s/../../../../boxes/... is the published box; qemu joins it as text, and the kernel
    // takes each .. from where s led: trap/boxes/..., whose backing file is any file root can read.
    const trap = join(root, 'trap')
    await mkdir(join(trap, 'a', 'b', 'c', 'd'), {recursive: true})
    await mkdir(join(trap, 'boxes', 'deb', '1.0'), {recursive: true})
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-u', '-b', '/etc/hostname', '-F', 'raw', join(trap, 'boxes', 'deb', '1.0', 'box.img'), '1M'])
    await symlink(join(trap, 'a', 'b', 'c', 'd'), img('s'))
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-u', '-b', 's/../../../../boxes/deb/1.0/box.img', '-F', 'qcow2', img('dotdot.qcow2'), '1M'])
    const qemu = JSON.parse((await execa('qemu-img', ['info', '-U', '--output=json', '--backing-chain', img('dotdot.qcow2')])).stdout) as {filename: string}[]
    expect(qemu.map((layer) => layer.filename).at(-1)).toBe('/etc/hostname')
    expect(await gateImage(img('dotdot.qcow2'), scope())).toMatchObject({ok: false, reason: 'BACKING_OUTSIDE'})
    await Promise.all([rm(img('dotdot.qcow2')), rm(img('s')), rm(trap, {recursive: true})])
  })

  it('refuses a symlinked image or folder without following it', async () => {
    expect(await gateImage(join(root, 'users', 'e195702', 'images', 'linked', 'images', '01.qcow2'), scope())).toMatchObject({ok: false, reason: 'IMAGE_SYMLINK'})
  })
})
