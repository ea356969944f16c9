import {execFileSync} from 'node:child_process'
import {chown, mkdir, mkdtemp, readFile, rm, symlink, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {LocalImageGate, type ImageScope} from '../../../src/virsh/image-check.js'

// Ownership is by number, so uids without a passwd entry do for these checks.
const STUDENT = 61001
const OTHER = 61002
const signal = new AbortController().signal

describe('image rules on real files and qemu-img', () => {
  let root: string
  let scope: ImageScope
  let gate: LocalImageGate

  const create = async (path: string, args: string[] = [], owner = STUDENT) => {
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', ...args, path, '16M'])
    await chown(path, owner, owner)
  }

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'shien-img-'))
    const home = join(root, 'users', 'e195701')
    await mkdir(join(home, 'images'), {recursive: true})
    await mkdir(join(root, 'boxes', 'os', '1.0'), {recursive: true})
    scope = {
      uid: STUDENT,
      home,
      imagesDir: join(home, 'images'),
      boxesDir: join(root, 'boxes'),
      image: (slot) => join(home, 'images', `${slot}.qcow2`),
      record: (slot) => join(home, 'images', `${slot}.json`),
    }
    gate = new LocalImageGate(scope, 'libvirt-qemu')
  })
  afterEach(async () => {
    await rm(root, {recursive: true, force: true})
  })

  it('accepts a chain through a relative name in the images folder onto a published box', async () => {
    const box = join(root, 'boxes', 'os', '1.0', 'box.qcow2')
    await create(box, [], 0)
    await create(scope.image('02'), ['-b', box, '-F', 'qcow2'])
    await create(scope.image('01'), ['-b', '02.qcow2', '-F', 'qcow2'])
    const image = await gate.check('01', {signal})
    expect(image).toEqual({slot: '01', path: scope.image('01'), virtualSize: 16 << 20, backingChain: [scope.image('02'), box]})
  })

  it.each([
    ['a qemu protocol name', ['-u', '-b', 'nbd:127.0.0.1:10809', '-F', 'qcow2'], 'BACKING_OUTSIDE'],
    ['a json: pseudo-protocol', ['-u', '-b', 'json:{"driver":"file","filename":"/etc/shadow"}', '-F', 'raw'], 'BACKING_OUTSIDE'],
    ['a missing backing file', ['-u', '-b', 'gone.qcow2', '-F', 'qcow2'], 'BACKING_MISSING'],
    ['itself as backing file', ['-u', '-b', '01.qcow2', '-F', 'qcow2'], 'BACKING_LOOP'],
  ])('refuses %s', async (_, args, code) => {
    await create(scope.image('01'), args)
    await expect(gate.check('01', {signal})).rejects.toMatchObject({code})
  })

  it('refuses a backing file whose format is not declared (qemu would probe it)', async () => {
    await create(scope.image('02'))
    await create(scope.image('01'), ['-b', '02.qcow2', '-F', 'qcow2'])
    // qemu-img no longer writes such images, so turn the backing-format header extension
    // (magic 0xe2792aca) into an unknown one, which qemu skips.
    const bytes = await readFile(scope.image('01'))
    const at = bytes.indexOf(Buffer.from([0xe2, 0x79, 0x2a, 0xca]))
    expect(at).toBeGreaterThan(0)
    bytes.writeUInt32BE(0x5348494e, at)
    await writeFile(scope.image('01'), bytes)
    await expect(gate.check('01', {signal})).rejects.toMatchObject({code: 'BACKING_FORMAT'})
  })

  it("refuses a backing file in the images folder that someone else owns", async () => {
    await create(scope.image('02'), [], OTHER)
    await create(scope.image('01'), ['-b', '02.qcow2', '-F', 'qcow2'])
    await expect(gate.check('01', {signal})).rejects.toMatchObject({code: 'BACKING_NOT_OWNED'})
  })

  it('refuses a backing file reached through a symlink that leaves the allowed folders', async () => {
    const outside = join(root, 'elsewhere.qcow2')
    await create(outside)
    await symlink(outside, join(scope.imagesDir, 'link.qcow2'))
    await create(scope.image('01'), ['-b', 'link.qcow2', '-F', 'qcow2'])
    await expect(gate.check('01', {signal})).rejects.toMatchObject({code: 'BACKING_OUTSIDE'})
  })

  it('grants libvirt-qemu traverse on the folders, rw on the image and r on own backing files', async () => {
    await create(scope.image('02'))
    await create(scope.image('01'), ['-b', '02.qcow2', '-F', 'qcow2'])
    await gate.grantQemuAccess(await gate.check('01', {signal}), {signal})
    const acl = (p: string) => execFileSync('getfacl', ['--omit-header', '--absolute-names', p], {encoding: 'utf8'})
    expect(acl(scope.home)).toContain('user:libvirt-qemu:--x')
    expect(acl(scope.imagesDir)).toContain('user:libvirt-qemu:--x')
    expect(acl(scope.image('01'))).toContain('user:libvirt-qemu:rw-')
    expect(acl(scope.image('02'))).toContain('user:libvirt-qemu:r--')
  })

  it('notices when the image no longer belongs to the student', async () => {
    await create(scope.image('01'))
    const image = await gate.check('01', {signal})
    await expect(gate.verifyOwner(image)).resolves.toBeUndefined()
    await chown(scope.image('01'), 64055, 64055)
    await expect(gate.verifyOwner(image)).rejects.toMatchObject({code: 'IMAGE_RELABELLED'})
  })

  it('removes the image and its record, and nothing else', async () => {
    await create(scope.image('01'))
    await create(scope.image('02'))
    await writeFile(scope.record('01'), '{}')
    expect(await gate.removeImage('01')).toEqual([scope.image('01'), scope.record('01')])
    expect(await gate.removeImage('01')).toEqual([])
    expect(execFileSync('ls', [scope.imagesDir], {encoding: 'utf8'}).trim()).toBe('02.qcow2')
  })
})
