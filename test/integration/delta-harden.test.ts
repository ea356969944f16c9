/**
 * A delta applied on a real guest disk, then hardened as after a full convert: the writes of
 * both land in the overlay, and the published base stays byte for byte what it was.
 * libguestfs launches (~15 s each under TCG): build the base 1, derive the student's disk 1,
 * harden 1, read back 1.
 */
import {execFile} from 'node:child_process'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {applyDelta} from '../../src/blade/apply-delta.js'
import {hardenStaged} from '../../src/blade/harden-staged.js'
import {stagedImage} from '../../src/blade/slot-files.js'
import {manifestOfImage} from '../../src/delta/image-manifest.js'
import {GuestfishSession} from '../../src/harden/guestfish.js'
import {VAGRANT_INSECURE_KEYS} from '../../src/harden/insecure-keys.js'
import {qemuImgInfo} from '../../src/qemu-img/qemu-img.js'
import {deltaBetween, makeBladeStorage, publishBase, sha256Of, STUDENT, type BladeStorage} from '../support/delta-blade.js'
import {buildGuestImage, makeKeyPair, readGuestImage, vagrantBox, type GuestSnapshot} from '../support/guest-image.js'

const run = promisify(execFile)
const AK = '/home/vagrant/.ssh/authorized_keys'

describe('apply-delta then harden on a Vagrant-like guest', () => {
  let s: BladeStorage
  let base: string
  let baseSha: string
  let student: Awaited<ReturnType<typeof makeKeyPair>>
  let staged: string
  let derived: string
  let guest: GuestSnapshot
  let shaAfterApply: string

  beforeAll(async () => {
    s = await makeBladeStorage()
    const built = join(s.dir, 'base.qcow2')
    await buildGuestImage(built, (await vagrantBox()).entries)
    base = await publishBase(s.root, 'os101/debian12', '2026.1.0', built)
    baseSha = await sha256Of(base)
    // The student's disk: the base with a project file, as a full push would convert it.
    derived = join(s.dir, 'student.qcow2')
    await run('qemu-img', ['convert', '-f', 'qcow2', '-O', 'qcow2', base, derived])
    const g = await GuestfishSession.start()
    try {
      await g.addDrive(derived, {format: 'qcow2', readonly: false})
      await g.launch()
      await g.call('mount', '/dev/sda1', '/')
      await g.writeFile('/home/vagrant/project.txt', 'hello from the laptop\n')
      await g.close()
    } catch (error) {
      await g.kill()
      throw error
    }
    await deltaBetween(await manifestOfImage(base, {format: 'qcow2'}), derived, join(s.ctx.paths.incoming, 'web.delta'), s.dir)
    await applyDelta(s.ctx, {name: 'web', slot: '01', box: 'os101/debian12', version: '2026.1.0'}, {student: STUDENT})
    staged = stagedImage(s.ctx, '01')
    await run('qemu-img', ['compare', '-f', 'qcow2', '-F', 'qcow2', staged, derived])
    shaAfterApply = await sha256Of(base)
    student = await makeKeyPair('ed25519', 'e100001@laptop')
    await hardenStaged(s.ctx, '01', student.publicLine, {box: 'os101/debian12 2026.1.0 (delta)'})
    guest = await readGuestImage(staged, {files: [AK, '/home/vagrant/project.txt']})
  }, 600_000)

  afterAll(async () => {
    if (s) await run('rm', ['-rf', s.dir])
    if (student) await run('rm', ['-rf', student.dir])
  })

  it('makes the student\'s disk as an overlay, before hardening equal to the full conversion', async () => {
    expect(shaAfterApply).toBe(baseSha)
    const [top] = await qemuImgInfo(staged, {format: 'qcow2'})
    expect(top).toMatchObject({backingFile: base, backingFormat: 'qcow2'})
  })

  it('hardens the overlay: the student\'s key in, the insecure keys out, the project file kept', () => {
    const keys = guest.files[AK]?.content?.toString() ?? ''
    expect(keys).toContain(student.publicLine)
    for (const key of VAGRANT_INSECURE_KEYS) expect(keys).not.toContain(key.blob.slice(0, 40))
    expect(guest.files['/home/vagrant/project.txt']?.content?.toString()).toBe('hello from the laptop\n')
  })

  it('keeps the base the overlay was made on in the slot\'s record, next to what hardening did', async () => {
    const record = JSON.parse(await readFile(join(s.ctx.paths.images, '.01.new.json'), 'utf8'))
    expect(record.base).toMatchObject({box: 'os101/debian12', version: '2026.1.0', path: base})
    expect(record.harden.keyInstalled).toMatchObject({added: true})
  })

  it('never writes the base', async () => {
    expect(await sha256Of(base)).toBe(baseSha)
    const [info] = await qemuImgInfo(base, {format: 'qcow2'})
    expect(info.backingFile).toBeUndefined()
  })
})
