/**
 * GuestfishSession's file transfers on a real appliance (one launch, ~15 s under TCG): every byte
 * value, each way a file goes (`pread` or `download`, `write` lines or `upload`), in place.
 */
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {GuestfishSession} from '../../src/harden/guestfish.js'
import '../support/guest-image.js'

describe('GuestfishSession file transfers', () => {
  let work: string
  let g: GuestfishSession
  const inode = async (path: string) => /st_ino: (\d+)/.exec(await g.call('lstatns', path))?.[1]

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'shien-guestfish-files-'))
    const image = join(work, 'scratch.qcow2')
    g = await GuestfishSession.start()
    await g.call('disk-create', image, 'qcow2', '32M')
    await g.addDrive(image, {format: 'qcow2', readonly: false})
    await g.launch()
    await g.call('mkfs', 'ext4', '/dev/sda')
    await g.call('mount', '/dev/sda', '/')
  }, 120_000)

  afterAll(async () => {
    await g?.close()
    if (work) await rm(work, {recursive: true, force: true})
  })

  it.each([
    ['empty', Buffer.alloc(0)],
    ['every byte but NUL, not UTF-8 (written as lines)', Buffer.from(Array.from({length: 255}, (_, i) => i + 1))],
    ['10 KiB needing escapes (several lines sent together)', Buffer.alloc(10 * 1024, ' \n$"')],
    ['a NUL byte (uploaded)', Buffer.from('a\0b\n')],
    ['40 KiB (uploaded)', Buffer.alloc(40 * 1024, 'x')],
    ['1.5 MiB (uploaded, read back by download)', Buffer.alloc(1536 * 1024, 'key line\n')],
  ])('writes and reads back %s, byte for byte', async (_what, bytes) => {
    await g.writeFile('/file', bytes)
    expect((await g.readFile('/file')).equals(bytes)).toBe(true)
    expect((await g.stat('/file'))?.size).toBe(bytes.length)
  })

  it('rewrites an existing file in place: same inode, mode and owner', async () => {
    await g.writeFile('/kept', 'first version, longer than the second\n')
    await g.call('chown', '1000', '42', '/kept')
    await g.call('chmod', '0640', '/kept')
    const before = await inode('/kept')
    await g.writeFile('/kept', 'second\n')
    expect(await inode('/kept')).toBe(before)
    expect(await g.stat('/kept')).toMatchObject({kind: 'file', mode: 0o640, uid: 1000, gid: 42, size: 7})
    expect((await g.readFile('/kept')).toString()).toBe('second\n')
  })

  it('tells a missing path, a dangling symlink and a path under a file apart from a file', async () => {
    await g.call('ln-s', '/nowhere', '/dangling')
    expect(await g.stat('/missing')).toBeUndefined()
    expect(await g.stat('/dangling')).toMatchObject({kind: 'symlink'})
    expect(await g.statFollowed('/dangling')).toBeUndefined()
    expect(await g.stat('/kept/below')).toBeUndefined()
    expect(await g.call('echo', 'still running')).toBe('still running\n')
  })
})
