import {chmod, chown, mkdir, mkdtemp, rm, symlink, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {checkFixedAppliance} from '../../../src/harden/fixed-appliance.js'
import {GuestfishSession} from '../../../src/harden/guestfish.js'

const STUDENT = 61001

describe('the blade\'s fixed libguestfs appliance', () => {
  let dir: string
  beforeEach(async () => {
    dir = join(await mkdtemp(join(tmpdir(), 'shien-appliance-')), 'appliance')
    await mkdir(dir, {mode: 0o755})
    for (const f of ['kernel', 'initrd', 'root']) await writeFile(join(dir, f), f, {mode: 0o644})
  })
  afterEach(async () => {
    await rm(join(dir, '..'), {recursive: true, force: true})
  })

  it('is taken when it is root\'s and read-only to everyone else', async () => {
    await expect(checkFixedAppliance(dir)).resolves.toBeUndefined()
  })

  it.each([
    ['a folder others may write', async () => chmod(dir, 0o777), /folder .* is writable by others than root/],
    ['a file a student owns', async () => chown(join(dir, 'kernel'), STUDENT, STUDENT), /file .*kernel is not owned by root/],
    ['a group-writable file', async () => chmod(join(dir, 'root'), 0o664), /file .*root is writable by others than root/],
    ['a missing file', async () => rm(join(dir, 'initrd')), /initrd is missing/],
    ['a file that is a symlink', async () => {
      await rm(join(dir, 'initrd'))
      await symlink(join(dir, 'kernel'), join(dir, 'initrd'))
    }, /initrd is not a regular file/],
  ])('is refused with %s, before guestfish starts', async (_, spoil, message) => {
    await spoil()
    await expect(checkFixedAppliance(dir)).rejects.toMatchObject({code: 'APPLIANCE_UNSAFE', message: expect.stringMatching(message)})
    await expect(GuestfishSession.start({appliance: dir})).rejects.toMatchObject({code: 'APPLIANCE_UNSAFE'})
  })
})
