import {chmod, chown, link, lstat, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile} from 'node:fs/promises'
import {execFileSync} from 'node:child_process'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {OwnerNvram} from '../../../src/virsh/nvram.js'

// Ownership is by number, so uids without a passwd entry do for these checks.
const STUDENT = 61001
const signal = new AbortController().signal
const AAVMF_VARS = '/usr/share/AAVMF/AAVMF_VARS.fd'
const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd'

describe('a UEFI VM\'s variable store, made as its owner', () => {
  let root: string
  let images: string
  let store: string
  /** A file only root may write, that a planted link would reach if the store were written as root. */
  let victim: string
  const nvram = new OwnerNvram({uid: STUDENT, gid: STUDENT})

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'shien-nvram-'))
    await chmod(root, 0o755)
    images = join(root, 'users', 'e195701', 'images')
    await mkdir(images, {recursive: true})
    await chown(join(root, 'users', 'e195701'), STUDENT, STUDENT)
    await chown(images, STUDENT, STUDENT)
    store = join(images, '01.vars.fd')
    victim = join(root, 'victim')
    await writeFile(victim, 'root only\n', {mode: 0o644})
  })
  afterEach(async () => {
    await rm(root, {recursive: true, force: true})
  })

  it('copies the template into a 0600 file of the owner, sparsely: AAVMF\'s 64 MiB of zeros take no blocks', async () => {
    await nvram.reset(store, AAVMF_VARS, {signal})
    const info = await stat(store)
    expect([info.uid, info.gid, info.mode & 0o777, info.size, info.nlink]).toEqual([STUDENT, STUDENT, 0o600, 64 << 20, 1])
    expect(info.blocks).toBe(0)
    await nvram.reset(store, OVMF_VARS, {signal})
    expect((await readFile(store)).equals(await readFile(OVMF_VARS))).toBe(true)
  })

  it('makes a fresh copy at define, and keeps the VM\'s own variables before a start', async () => {
    await nvram.reset(store, OVMF_VARS, {signal})
    await writeFile(store, 'boot entries')
    await nvram.ensure(store, OVMF_VARS, {signal})
    expect(await readFile(store, 'utf8')).toBe('boot entries')
    await nvram.reset(store, OVMF_VARS, {signal})
    expect((await readFile(store)).equals(await readFile(OVMF_VARS))).toBe(true)
    await rm(store)
    await nvram.ensure(store, OVMF_VARS, {signal})
    expect((await stat(store)).uid).toBe(STUDENT)
  })

  it('refuses a symlink planted at the store, at define and before a start, and writes nothing through it', async () => {
    await symlink(victim, store)
    for (const step of ['reset', 'ensure'] as const) {
      await expect(nvram[step](store, OVMF_VARS, {signal})).rejects.toMatchObject({code: 'NVRAM_UNSAFE', message: expect.stringContaining('symlink')})
    }
    expect(await readFile(victim, 'utf8')).toBe('root only\n')
    expect((await lstat(store)).isSymbolicLink()).toBe(true)
    // A dangling one, to a file it would create, is refused the same.
    await rm(store)
    await symlink(join(root, 'created-by-root'), store)
    await expect(nvram.reset(store, OVMF_VARS, {signal})).rejects.toMatchObject({code: 'NVRAM_UNSAFE'})
    await expect(stat(join(root, 'created-by-root'))).rejects.toMatchObject({code: 'ENOENT'})
  })

  it('refuses a hard link to another file of the owner\'s, and a FIFO, and a file someone else owns', async () => {
    const elsewhere = join(images, 'project.txt')
    await writeFile(elsewhere, 'work')
    await chown(elsewhere, STUDENT, STUDENT)
    await link(elsewhere, store)
    await expect(nvram.reset(store, OVMF_VARS, {signal})).rejects.toMatchObject({code: 'NVRAM_UNSAFE', message: expect.stringContaining('2 hard links')})
    await expect(nvram.ensure(store, OVMF_VARS, {signal})).rejects.toMatchObject({code: 'NVRAM_UNSAFE'})
    expect(await readFile(elsewhere, 'utf8')).toBe('work')
    await rm(store)
    execFileSync('mkfifo', [store])
    await chown(store, STUDENT, STUDENT)
    await expect(nvram.ensure(store, OVMF_VARS, {signal})).rejects.toMatchObject({code: 'NVRAM_UNSAFE', message: expect.stringContaining('not a regular file')})
    await rm(store)
    await writeFile(store, 'root\'s')
    await expect(nvram.ensure(store, OVMF_VARS, {signal})).rejects.toMatchObject({code: 'NVRAM_UNSAFE', message: expect.stringContaining('not owned by you')})
  })

  it('cannot write where the owner cannot: a folder of root\'s, even when the owner names it', async () => {
    const rootDir = join(root, 'roots')
    await mkdir(rootDir, {mode: 0o755})
    await expect(nvram.reset(join(rootDir, '01.vars.fd'), OVMF_VARS, {signal})).rejects.toMatchObject({code: 'NVRAM_FAILED', message: expect.stringContaining('permission denied')})
    await expect(stat(join(rootDir, '01.vars.fd'))).rejects.toMatchObject({code: 'ENOENT'})
  })
})
