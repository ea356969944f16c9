import {chmod, chown, mkdir, mkdtemp, rm, symlink, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {LocalImageGate, type ImageScope} from '../../../src/virsh/image-check.js'
import {imagePlatform, LEGACY_PLATFORM} from '../../../src/virsh/image-platform.js'

const STUDENT = 61001
const signal = new AbortController().signal

describe('the platform in a slot\'s record', () => {
  it('reads what harden wrote, and an Arm machine is always UEFI', () => {
    expect(imagePlatform('{"architecture": "aarch64", "firmware": "efi"}', 'r')).toEqual({arch: 'aarch64', firmware: 'efi'})
    expect(imagePlatform('{"architecture": "aarch64"}', 'r')).toEqual({arch: 'aarch64', firmware: 'efi'})
    expect(imagePlatform('{"architecture": "x86_64", "firmware": "efi"}', 'r')).toEqual({arch: 'x86_64', firmware: 'efi'})
  })

  it('takes an image pushed before records held a platform as x86_64 BIOS, as it was defined then', () => {
    expect(imagePlatform(undefined, 'r')).toEqual(LEGACY_PLATFORM)
    expect(imagePlatform('{"slot": "01", "harden": {}}', 'r')).toEqual({arch: 'x86_64', firmware: 'bios'})
  })

  it('refuses a malformed record, and an architecture no template exists for', () => {
    for (const text of ['{', '[]', '{"firmware": "uboot"}', '{"architecture": 7}']) {
      expect(() => imagePlatform(text, 'r')).toThrow(expect.objectContaining({code: 'IMAGE_RECORD_INVALID'}))
    }
    expect(() => imagePlatform('{"architecture": "arm"}', 'r')).toThrow(expect.objectContaining({code: 'BLADE_ARCH_UNSUPPORTED'}))
  })
})

describe('the record read as its owner', () => {
  let root: string
  let scope: ImageScope
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'shien-rec-'))
    await chmod(root, 0o755)
    const home = join(root, 'users', 'e195701')
    await mkdir(join(home, 'images'), {recursive: true})
    await chown(home, STUDENT, STUDENT)
    await chown(join(home, 'images'), STUDENT, STUDENT)
    scope = {
      uid: STUDENT, gid: STUDENT, home, imagesDir: join(home, 'images'), boxesDir: join(root, 'boxes'),
      image: (slot) => join(home, 'images', `${slot}.qcow2`),
      record: (slot) => join(home, 'images', `${slot}.json`),
      nvram: (slot) => join(home, 'images', `${slot}.vars.fd`),
    }
  })
  afterEach(() => rm(root, {recursive: true, force: true}))

  it('reads the student\'s record, and a link to a file only root may read gives the legacy platform, not its content', async () => {
    await writeFile(scope.record('01'), '{"architecture": "aarch64", "firmware": "efi"}')
    await chown(scope.record('01'), STUDENT, STUDENT)
    const gate = new LocalImageGate(scope)
    expect(await gate.platform('01', {signal})).toEqual({arch: 'aarch64', firmware: 'efi'})
    const secret = join(root, 'secret.json')
    await writeFile(secret, '{"architecture": "aarch64"}', {mode: 0o600})
    await symlink(secret, scope.record('02'))
    expect(await gate.platform('02', {signal})).toEqual(LEGACY_PLATFORM)
  })

  it('reads a bounded amount: a record linked to /dev/zero is refused, not read forever', async () => {
    await symlink('/dev/zero', scope.record('03'))
    await expect(new LocalImageGate(scope).platform('03', {signal})).rejects.toMatchObject({code: 'IMAGE_RECORD_INVALID'})
  })
})
