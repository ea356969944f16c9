/**
 * How hardenImage finds the root on real qcow2 images with real libguestfs: the fast probe of
 * src/harden/mount-root.ts for a root on LVM and a /home of its own (named in fstab by LV path and
 * by LABEL), inspection for two roots, and a data disk refused without one. Launches (~15 s each
 * under TCG): build 1, harden 4, read back 2.
 */
import {createHash} from 'node:crypto'
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {hardenImage} from '../../src/harden/harden-image.js'
import {GuestfishSession} from '../../src/harden/guestfish.js'
import {mountLinuxRoot, type MountResult} from '../../src/harden/mount-root.js'
import {buildGuestImages, makeKeyPair, minimalLinuxRoot, vagrantBox, type GuestEntry} from '../support/guest-image.js'

const AK = '/home/vagrant/.ssh/authorized_keys'

/** The entries under /home, moved to the root of a filesystem of their own. */
const homeOnly = (entries: GuestEntry[]) => entries.filter((e) => e.path.startsWith('/home/')).map((e) => ({...e, path: e.path.slice('/home'.length)}))
const withoutHome = (entries: GuestEntry[]) => entries.filter((e) => !e.path.startsWith('/home/'))
const fstab = (lines: string[]): GuestEntry => ({type: 'file', path: '/etc/fstab', content: lines.map((l) => `${l}\n`).join('')})

interface ReadBack {
  mount: MountResult
  key?: string
  /** The home mountpoint as the root filesystem alone has it. */
  rootOnlyHome: string[]
}

/** Mounts the image as harden does (read-only here), reads the key, then looks at the root filesystem alone. */
async function readBack(image: string, rootDevice: string): Promise<ReadBack> {
  const g = await GuestfishSession.start()
  try {
    await g.addDrive(image, {format: 'qcow2', readonly: true})
    await g.launch()
    const mount = await mountLinuxRoot(g, {readonly: true})
    const key = (await g.stat(AK))?.kind === 'file' ? (await g.readFile(AK)).toString('utf8') : undefined
    await g.call('umount-all')
    await g.call('mount-ro', rootDevice, '/')
    const rootOnlyHome = await g.lines('ls', '/home')
    await g.close()
    return {mount, key, rootOnlyHome}
  } catch (error) {
    await g.kill()
    throw error
  }
}

describe('hardenImage finding the root', () => {
  let work: string
  let student: Awaited<ReturnType<typeof makeKeyPair>>
  const images = {lvm: '', labelled: '', twoRoots: '', data: ''}
  const digest = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex')

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'shien-harden-roots-'))
    for (const name of Object.keys(images) as (keyof typeof images)[]) images[name] = join(work, `${name}.qcow2`)
    const box = (await vagrantBox()).entries
    const rootOf = (lines: string[]) => [...withoutHome(box), {type: 'dir' as const, path: '/home'}, fstab(lines)]
    await buildGuestImages([
      {image: images.lvm, lvm: 'hardenroots', sizeMiB: 96, entries: rootOf(['/dev/mapper/hardenroots-root / ext4 errors=remount-ro 0 1', '/dev/hardenroots/vol1 /home ext4 defaults 0 2']),
        volumes: [{entries: homeOnly(box), sizeMiB: 24}]},
      {image: images.labelled, sizeMiB: 96, entries: rootOf(['/dev/vda1 / ext4 errors=remount-ro 0 1', 'LABEL=homes /home/ ext4 defaults 0 2', '/dev/vda3 none swap sw 0 0']),
        volumes: [{entries: homeOnly(box), sizeMiB: 24, label: 'homes'}]},
      {image: images.twoRoots, sizeMiB: 96, entries: box, volumes: [{entries: minimalLinuxRoot(), sizeMiB: 24}]},
      {image: images.data, entries: [{type: 'file', path: '/projects/notes.txt', content: 'not an operating system\n'}]},
    ])
    student = await makeKeyPair('ed25519', 'e195701@laptop')
  }, 300_000)

  afterAll(async () => {
    if (work) await rm(work, {recursive: true, force: true})
    if (student) await rm(student.dir, {recursive: true, force: true})
  })

  it.each([
    ['a root on LVM with /home on another logical volume', 'lvm', '/dev/hardenroots/root'],
    ['a /home partition named by LABEL in fstab', 'labelled', '/dev/sda1'],
  ] as const)('hardens %s, writing the key on the filesystem fstab mounts at /home', async (_what, name, root) => {
    const report = await hardenImage(images[name], {publicKey: student.publicLine})
    expect(report).toMatchObject({distro: 'debian', keyInstalled: {file: AK, added: true}})
    expect(report.accountsLocked.sort()).toEqual(['root', 'vagrant'])
    expect(report.insecureKeysRemoved).toContainEqual({file: AK, count: 2})
    const back = await readBack(images[name], root)
    expect(back.mount).toEqual({mounted: true, root, distro: 'debian', via: 'probe'})
    expect(back.key).toContain(student.publicLine)
    // The root filesystem's own /home stayed empty: everything went to the home filesystem.
    expect(back.rootOnlyHome).toEqual([])
  }, 300_000)

  it('refuses two Linux roots with HARDEN_NO_OS, as inspection tells them, and leaves the image as it was', async () => {
    const before = await digest(images.twoRoots)
    const error = await hardenImage(images.twoRoots, {publicKey: student.publicLine}).catch((e: unknown) => e)
    expect(error).toMatchObject({code: 'HARDEN_NO_OS', exitCode: 3, message: expect.stringContaining('2 operating systems were found')})
    expect(await digest(images.twoRoots)).toBe(before)
  }, 300_000)

  it('refuses a data disk with HARDEN_NO_OS and leaves the image as it was', async () => {
    const before = await digest(images.data)
    const error = await hardenImage(images.data, {publicKey: student.publicLine}).catch((e: unknown) => e)
    expect(error).toMatchObject({code: 'HARDEN_NO_OS', exitCode: 3, message: expect.stringContaining('no operating system was found')})
    expect(await digest(images.data)).toBe(before)
  }, 300_000)
})
