/**
 * What hardenImage refuses before it starts an appliance: each case must fail fast, with its code,
 * and without a launch (a launch costs ~15 s on the blade).
 */
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {hardenImage} from '../../../src/harden/harden-image.js'
import {applianceLaunches} from '../../../src/harden/guestfish.js'
import {VAGRANT_INSECURE_KEYS} from '../../../src/harden/insecure-keys.js'

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICdUZsQXPBaGSqXE2kE0m2xb8QNcF8HoimKhXkjSDRdT me@laptop'

describe('hardenImage input checks', () => {
  let dir: string
  let image: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shien-harden-unit-'))
    image = join(dir, '01.qcow2')
    await writeFile(image, 'not opened: the checks come first')
  })
  afterAll(() => rm(dir, {recursive: true, force: true}))

  it.each([
    ['an insecure key as the student key', {publicKey: `${VAGRANT_INSECURE_KEYS[1].type} ${VAGRANT_INSECURE_KEYS[1].blob}`}, 'HARDEN_BAD_PUBLIC_KEY'],
    ['two keys at once', {publicKey: `${KEY}\n${KEY}`}, 'HARDEN_BAD_PUBLIC_KEY'],
    ['a user name with a slash', {publicKey: KEY, user: '../root'}, 'HARDEN_BAD_USER'],
    ['a user name with a colon', {publicKey: KEY, user: 'vagrant:x'}, 'HARDEN_BAD_USER'],
  ])('refuses %s', async (_what, opts, code) => {
    const before = applianceLaunches()
    await expect(hardenImage(image, opts)).rejects.toMatchObject({code, exitCode: 3})
    expect(applianceLaunches()).toBe(before)
  })

  it('refuses a missing image or a directory with HARDEN_NO_IMAGE', async () => {
    await expect(hardenImage(join(dir, 'nope.qcow2'), {publicKey: KEY})).rejects.toMatchObject({code: 'HARDEN_NO_IMAGE', exitCode: 3})
    await expect(hardenImage(dir, {publicKey: KEY})).rejects.toMatchObject({code: 'HARDEN_NO_IMAGE'})
  })
})
