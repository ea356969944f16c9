/**
 * harden's check of the declared architecture against the disk, on real qcow2 images with real
 * libguestfs (no local blade). Launches (~15 s each under TCG): build 1 (both images), harden 2,
 * read back 1. The guests' init is Debian 12's arm64 /bin/true (test/fixtures/elf), reached the
 * way Debian reaches systemd: /sbin -> usr/sbin, /usr/sbin/init -> /lib/systemd/systemd, /lib ->
 * usr/lib. Resolved on the host instead of in the guest, /lib/systemd/systemd is the host's
 * amd64 systemd, so reading the wrong file gives the wrong answer.
 */
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {auditImage} from '../../src/audit/audit-image.js'
import {BUILTIN_WEAK_PASSWORDS} from '../../src/audit/config.js'
import {hardenImage} from '../../src/harden/harden-image.js'
import {buildGuestImages, makeKeyPair, readGuestImage, vagrantBox, type GuestEntry} from '../support/guest-image.js'

const ARM64_TRUE = fileURLToPath(new URL('../fixtures/elf/true-arm64', import.meta.url))

describe('harden checks the declared architecture against the guest\'s init', () => {
  let work: string
  let labelledAmd64: string
  let declaredArm64: string
  let publicKey: string
  let box: Awaited<ReturnType<typeof vagrantBox>>
  const planted = (path: string) => {
    const entry = box.entries.find((e) => e.path === path)
    return entry?.type === 'file' ? entry.content.toString() : undefined
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'shien-harden-arch-'))
    labelledAmd64 = join(work, 'amd64-label.qcow2')
    declaredArm64 = join(work, 'arm64.qcow2')
    publicKey = (await makeKeyPair('ed25519', 'student@laptop')).publicLine
    box = await vagrantBox()
    const arm64Init: GuestEntry[] = [
      {type: 'file', path: '/usr/lib/systemd/systemd', content: await readFile(ARM64_TRUE), mode: 0o755},
      {type: 'symlink', path: '/lib', target: 'usr/lib'},
      {type: 'symlink', path: '/sbin', target: 'usr/sbin'},
      {type: 'symlink', path: '/usr/sbin/init', target: '/lib/systemd/systemd'},
    ]
    const entries = [...box.entries, ...arm64Init]
    await buildGuestImages([{image: labelledAmd64, entries}, {image: declaredArm64, entries}])
  }, 300_000)
  afterAll(() => rm(work, {recursive: true, force: true}))

  it('refuses an arm64 system labelled amd64, naming both, before writing anything', async () => {
    const error = await hardenImage(labelledAmd64, {publicKey, declared: {architecture: 'amd64', source: 'metadata.json ("architecture": "amd64")'}}).catch((e: unknown) => e)
    expect(error).toMatchObject({code: 'BOX_ARCH_MISMATCH', exitCode: 3})
    expect((error as Error).message).toMatch(/declares amd64 \(metadata\.json.*\), but its disk holds a arm64 system: \/sbin\/init \(\/usr\/lib\/systemd\/systemd\) is a arm64 program/)
    // Mounting writes the file system's superblock; no file of the guest changed.
    const guest = await readGuestImage(labelledAmd64, {files: ['/etc/shadow', '/home/vagrant/.ssh/authorized_keys', '/etc/machine-id']})
    expect(guest.files['/etc/shadow']?.content?.toString()).toBe(planted('/etc/shadow'))
    expect(guest.files['/home/vagrant/.ssh/authorized_keys']?.content?.toString()).toBe(planted('/home/vagrant/.ssh/authorized_keys'))
    expect(guest.files['/etc/machine-id']?.content?.toString()).toBe(planted('/etc/machine-id'))
  }, 300_000)

  it('hardens an arm64 system declared arm64 as any other, and reports the machine of its init', async () => {
    const report = await hardenImage(declaredArm64, {publicKey, declared: {architecture: 'arm64', source: 'metadata.json'}})
    expect(report.architecture).toEqual({machine: 'arm64', init: '/sbin/init (/usr/lib/systemd/systemd)'})
    const guest = await readGuestImage(declaredArm64, {files: ['/home/vagrant/.ssh/authorized_keys', '/etc/shadow']})
    expect(guest.files['/home/vagrant/.ssh/authorized_keys']?.content?.toString()).toContain(publicKey.split(' ')[1])
    expect(guest.files['/etc/shadow']?.content?.toString()).toMatch(/^vagrant:\*:/m)
  }, 300_000)

  it('audits arm64 images as any other: the unhardened one\'s weak password and insecure key are found, the hardened one\'s are gone', async () => {
    const audit = (path: string) => auditImage({path, scope: {imagesDir: work, boxesDir: join(work, 'boxes')}}, {lists: {builtin: [...BUILTIN_WEAK_PASSWORDS], admin: []}, timeoutMs: 240_000})
    const [before, after] = [await audit(labelledAmd64), await audit(declaredArm64)]
    expect(before.report.status).toBe('audited')
    expect(before.findings.map((f) => f.code)).toEqual(expect.arrayContaining(['weak-password', 'insecure-key']))
    expect(after.report.status).toBe('audited')
    expect(after.findings.map((f) => f.code)).not.toContain('weak-password')
    expect(after.findings.map((f) => f.code)).not.toContain('insecure-key')
  }, 600_000)
})
