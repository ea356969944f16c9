import {execFileSync} from 'node:child_process'
import {chmod, chown, mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {LocalImageGate, type GatePoint, type ImageScope} from '../../../src/virsh/image-check.js'

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
    await chmod(root, 0o755)
    const home = join(root, 'users', 'e195701')
    await mkdir(join(home, 'images'), {recursive: true})
    await chown(home, STUDENT, STUDENT)
    await chown(join(home, 'images'), STUDENT, STUDENT)
    await chmod(home, 0o700)
    await mkdir(join(root, 'boxes', 'os', '1.0'), {recursive: true})
    scope = {
      uid: STUDENT,
      gid: STUDENT,
      home,
      imagesDir: join(home, 'images'),
      boxesDir: join(root, 'boxes'),
      image: (slot) => join(home, 'images', `${slot}.qcow2`),
      record: (slot) => join(home, 'images', `${slot}.json`),
      nvram: (slot) => join(home, 'images', `${slot}.vars.fd`),
    }
    gate = new LocalImageGate(scope)
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

  it('vets the file qemu reaches for a name through a symlink and .., not the name tidied up', async () => {
    // images/s/../../../../boxes/... tidies to the published box, but qemu joins it as text and
    // the kernel walks `..` from where the link `s` leads: into a copy with a backing file of
    // the student's choosing.
    const box = join(root, 'boxes', 'os', '1.0', 'box.qcow2')
    await create(box, [], 0)
    const decoy = join(root, 'decoy', 'a', 'b', 'c', 'd')
    await mkdir(join(root, 'decoy', 'boxes', 'os', '1.0'), {recursive: true})
    await mkdir(decoy, {recursive: true})
    const elsewhere = join(root, 'elsewhere.raw')
    await writeFile(elsewhere, Buffer.alloc(1 << 20))
    await create(join(root, 'decoy', 'boxes', 'os', '1.0', 'box.qcow2'), ['-b', elsewhere, '-F', 'raw'])
    await symlink(decoy, join(scope.imagesDir, 's'))
    await create(scope.image('01'), ['-u', '-b', 's/../../../../boxes/os/1.0/box.qcow2', '-F', 'qcow2'])
    await expect(gate.check('01', {signal})).rejects.toMatchObject({code: 'BACKING_OUTSIDE'})
  })

  /** A gate that runs `act` once when it reaches `point`, as a student racing it would. */
  const racedAt = (point: GatePoint, act: () => Promise<void>) => {
    let done = false
    return new LocalImageGate(scope, async (p) => {
      if (p !== point || done) return
      done = true
      await act()
    })
  }

  it('runs qemu-img as the owner: an image swapped after its header was read reaches nothing of root\'s', async () => {
    // Root's own file, readable by root only: what a root qemu-img would open for the student.
    const secret = join(root, 'root-only.raw')
    await writeFile(secret, Buffer.alloc(1 << 20))
    await chmod(secret, 0o600)
    await create(scope.image('01'))
    const swapped = join(root, 'swapped.qcow2')
    await create(swapped, ['-b', secret, '-F', 'raw'])
    const raced = racedAt('header-read', () => rename(swapped, scope.image('01')))
    const error = await raced.check('01', {signal}).catch((e: unknown) => e)
    expect(error).toMatchObject({code: 'IMAGE_UNREADABLE'})
    expect((error as Error).message).toMatch(/Permission denied/)
  })

  it('gives the same answer for a path outside the folders whether it exists or not', async () => {
    await writeFile(join(root, 'exists.qcow2'), '')
    await chmod(join(root, 'exists.qcow2'), 0o600)
    await mkdir(join(root, 'private'), {mode: 0o700})
    await writeFile(join(root, 'private', 'exists.qcow2'), '')
    const answer = async (name: string) => {
      await create(scope.image('01'), ['-u', '-b', name, '-F', 'qcow2'])
      const e = (await gate.check('01', {signal}).catch((x: unknown) => x)) as {code: string; message: string}
      return `${e.code}: ${e.message.replace(name, 'NAME')}`
    }
    // Behind a folder the student cannot enter, an existing file and a missing one look alike.
    expect(await answer(join(root, 'private', 'exists.qcow2'))).toBe(await answer(join(root, 'private', 'missing.qcow2')))
    expect(await answer(join(root, 'private', 'missing.qcow2'))).toMatch(/^BACKING_MISSING: /)
  })

  it("removes as the owner: an images folder swapped for a link to another account's reaches nothing there", async () => {
    const theirs = join(root, 'users', 'e195702', 'images')
    await mkdir(theirs, {recursive: true})
    await chmod(join(root, 'users', 'e195702'), 0o700)
    await create(join(theirs, '01.qcow2'), [], OTHER)
    await chown(join(root, 'users', 'e195702'), OTHER, OTHER)
    await chown(theirs, OTHER, OTHER)
    await create(scope.image('01'))
    // What renameat2(RENAME_EXCHANGE) does in one step, done here in two: the gate does not look.
    await rename(scope.imagesDir, join(scope.home, 'images.real'))
    await symlink(theirs, scope.imagesDir)
    const error = await gate.removeImage('01', {signal}).catch((e: unknown) => e)
    expect(error).toMatchObject({code: 'IMAGE_NOT_REMOVED'})
    expect((error as Error).message).toMatch(/Permission denied/)
    expect(execFileSync('ls', [theirs], {encoding: 'utf8'}).trim()).toBe('01.qcow2')
  })

  it('removes the image, its record and its UEFI store, and nothing else', async () => {
    await create(scope.image('01'))
    await create(scope.image('02'))
    await writeFile(scope.record('01'), '{}')
    await chown(scope.record('01'), STUDENT, STUDENT)
    await writeFile(scope.nvram('01'), 'vars')
    await chown(scope.nvram('01'), STUDENT, STUDENT)
    expect(await gate.removeImage('01', {signal})).toEqual([scope.image('01'), scope.record('01'), scope.nvram('01')])
    expect(await gate.removeImage('01', {signal})).toEqual([])
    expect(execFileSync('ls', [scope.imagesDir], {encoding: 'utf8'}).trim()).toBe('02.qcow2')
  })
})
