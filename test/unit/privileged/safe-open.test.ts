import {execFileSync} from 'node:child_process'
import {mkdir, mkdtemp, rename, rm, symlink, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {addAcl} from '../../../src/privileged/acl.js'
import {openExact} from '../../../src/privileged/safe-open.js'

const signal = new AbortController().signal
const aclOf = (path: string) => execFileSync('getfacl', ['--omit-header', '--absolute-names', path], {encoding: 'utf8'})

describe('opening student-controlled paths as root', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shien-open-'))
    await mkdir(join(dir, 'real'))
    await writeFile(join(dir, 'real', 'f'), 'data')
  })
  afterEach(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('opens a real file and reports its owner', async () => {
    const opened = await openExact(join(dir, 'real', 'f'), {code: 'IMAGE'})
    expect(opened.stat.uid).toBe(0)
    await opened.handle.close()
  })

  it('refuses a symlink, a symlinked parent folder, a missing file and a folder', async () => {
    await symlink(join(dir, 'real', 'f'), join(dir, 'link'))
    await symlink(join(dir, 'real'), join(dir, 'dirlink'))
    await expect(openExact(join(dir, 'link'), {code: 'IMAGE'})).rejects.toMatchObject({code: 'IMAGE_SYMLINK'})
    await expect(openExact(join(dir, 'dirlink', 'f'), {code: 'IMAGE'})).rejects.toMatchObject({code: 'IMAGE_SYMLINK'})
    await expect(openExact(join(dir, 'nope'), {code: 'IMAGE'})).rejects.toMatchObject({code: 'IMAGE_MISSING'})
    await expect(openExact(join(dir, 'real'), {code: 'IMAGE'})).rejects.toMatchObject({code: 'IMAGE_NOT_FILE'})
  })

  it('does not hang on a FIFO planted where a file should be', async () => {
    execFileSync('mkfifo', [join(dir, 'fifo')])
    await expect(openExact(join(dir, 'fifo'), {code: 'IMAGE'})).rejects.toMatchObject({code: 'IMAGE_NOT_FILE'})
  })

  it('puts the ACL on the file that was checked, even if the path is swapped for a symlink after', async () => {
    const victim = join(dir, 'victim')
    await writeFile(victim, 'secret', {mode: 0o600})
    const path = join(dir, 'real', 'f')
    const opened = await openExact(path, {code: 'IMAGE'})
    // The student's move: rename the checked file away and put a symlink to the victim in its place.
    await rename(path, join(dir, 'real', 'moved'))
    await symlink(victim, path)
    await addAcl(opened, ['user:libvirt-qemu:rw-'], {signal})
    await opened.handle.close()
    expect(aclOf(join(dir, 'real', 'moved'))).toContain('user:libvirt-qemu:rw-')
    expect(aclOf(victim)).not.toContain('libvirt-qemu')
  })

  it('grants on folders through the descriptor too', async () => {
    const opened = await openExact(join(dir, 'real'), {code: 'IMAGE', directory: true})
    await addAcl(opened, ['user:libvirt-qemu:--x'], {signal})
    await opened.handle.close()
    expect(aclOf(join(dir, 'real'))).toContain('user:libvirt-qemu:--x')
  })
})
