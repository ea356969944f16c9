/**
 * `shien audit` (offline) on real qcow2 images with planted weaknesses, through the built CLI as
 * an admin runs it. Appliance launches: 1 to build the three guests, then 2 images + 1 for the
 * published box during the audit (two at a time). Images refused by the gate cost none. The weak
 * image is mounted by the fast root probe, the leftovers image (root on LVM) too, through lvs.
 * The storage root is the test's own; of the local blade it takes only its two students'
 * accounts, to own the images, so it runs beside the blade's tests.
 */
import {createHash} from 'node:crypto'
import {chown, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import type {AuditResult, Finding} from '../../src/audit/types.js'
import {runShien, type CliRun} from '../support/cli.js'
import {buildGuestImages, sshFingerprint, GUESTFS_ENV} from '../support/guest-image.js'
import {ensureLocalBlade, type LocalBlade} from '../support/local-blade.js'
import {ADMIN_WEAK_PASSWORD, boxGuest, hostKeys, leftoversGuest, weakGuest, type HostKeys} from '../support/planted-images.js'


let blade: LocalBlade
let work: string
let root: string
let keys: HostKeys
let run: CliRun
let result: AuditResult
const paths = {weak: '', leftovers: '', box: '', symlink: '', backing: '', dataFile: '', notOwned: '', staged: ''}
const before = new Map<string, string>()

async function fingerprintOf(path: string): Promise<string> {
  const s = await stat(path)
  return `${createHash('sha256').update(await readFile(path)).digest('hex')} ${s.mtimeMs}`
}

async function ids(account: string): Promise<[number, number]> {
  const [uid, gid] = await Promise.all([execa('id', ['-u', account]), execa('id', ['-g', account])])
  return [Number(uid.stdout), Number(gid.stdout)]
}

async function writeConfig(dir: string, storageRoot: string): Promise<string> {
  const file = join(dir, 'config.json')
  await writeFile(file, JSON.stringify({storageRoot, audit: {weakPasswords: [ADMIN_WEAK_PASSWORD], concurrency: 2}}))
  return file
}

/** Images the gate must refuse: a symlink, a backing file outside, a data file, the wrong owner. */
async function plantRefused(a: string, b: string): Promise<void> {
  const qemuImg = (...args: string[]) => execa('qemu-img', ['create', '-q', '-f', 'qcow2', ...args])
  const images = (account: string) => join(root, 'users', account, 'images')
  Object.assign(paths, {
    symlink: join(images(a), '02.qcow2'), backing: join(images(a), '03.qcow2'), staged: join(images(a), '.01.new.qcow2'),
    dataFile: join(images(b), '03.qcow2'), notOwned: join(images(b), '04.qcow2'),
  })
  await symlink(`../../${b}/images/02.qcow2`, paths.symlink)
  await qemuImg(join(work, 'outside.qcow2'), '16M')
  await qemuImg('-b', join(work, 'outside.qcow2'), '-F', 'qcow2', paths.backing)
  await qemuImg('-o', `data_file=${join(work, 'data.raw')}`, paths.dataFile, '16M')
  await qemuImg(paths.notOwned, '16M')
  await qemuImg(paths.staged, '16M')
  for (const [path, account] of [[paths.backing, a], [paths.dataFile, b], [paths.staged, a]]) await chown(path, ...(await ids(account)))
}

beforeAll(async () => {
  blade = await ensureLocalBlade()
  work = await mkdtemp(join(tmpdir(), 'shien-audit-it-'))
  root = join(work, 'storage')
  const [a, b] = [blade.account, blade.otherAccount]
  for (const dir of [`users/${a}/images`, `users/${b}/images`, 'boxes/course/2024']) await mkdir(join(root, dir), {recursive: true})
  paths.weak = join(root, 'users', a, 'images', '01.qcow2')
  paths.leftovers = join(root, 'users', b, 'images', '02.qcow2')
  paths.box = join(root, 'boxes', 'course', '2024', 'box.img')
  keys = await hostKeys()
  await buildGuestImages([
    {image: paths.weak, entries: await weakGuest(keys)},
    // Root on LVM: the fast root probe finds it through lvs.
    {image: paths.leftovers, entries: await leftoversGuest(keys), lvm: 'leftovers'},
    {image: paths.box, entries: boxGuest(keys)},
  ])
  await chown(paths.weak, ...(await ids(a)))
  await chown(paths.leftovers, ...(await ids(b)))
  await plantRefused(a, b)
  for (const p of [paths.weak, paths.leftovers, paths.box]) before.set(p, await fingerprintOf(p))
  run = await runShien(['audit', '--config', await writeConfig(work, root), '--json'], {home: work, env: GUESTFS_ENV})
  result = run.json as AuditResult
}, 900_000)

afterAll(async () => {
  if (work) await rm(work, {recursive: true, force: true})
})

/** The findings of one image, reduced to what identifies them, sorted. */
const of = (image: string) => result.findings.filter((f) => f.image === image)
const brief = (fs: Finding[]) => fs.map((f) => [f.code, f.severity, f.user ?? '', f.file ?? ''].join(' ')).sort()

describe('shien audit on planted images', () => {
  it('exits 10 with one JSON result whose summary matches its findings', () => {
    expect(run.exitCode, run.stderr).toBe(10)
    expect(result.mode).toBe('images')
    expect(result.summary).toEqual({
      high: result.findings.filter((f) => f.severity === 'high').length, medium: result.findings.filter((f) => f.severity === 'medium').length,
      low: result.findings.filter((f) => f.severity === 'low').length, incomplete: 0, outcome: 'high',
    })
    expect(result.exitCode).toBe(10)
  })

  it('finds every credential weakness planted in the weak image, and nothing else', () => {
    expect(brief(of(paths.weak))).toEqual([
      'box-host-key high  /etc/ssh', 'insecure-key high bob /etc/ssh/keys/bob', 'insecure-key high root /root/.ssh/authorized_keys',
      'insecure-key high svc /var/lib/svc/.ssh/authorized_keys', 'insecure-key high vagrant /home/vagrant/.ssh/authorized_keys2',
      'nopasswd-sudo high alice /etc/sudoers.d/ops', 'nopasswd-sudo high vagrant /etc/sudoers.d/vagrant', 'shared-host-key high  /etc/ssh',
      'sshd-password-auth medium  /etc/ssh/sshd_config.d/50-cloud-init.conf', 'sshd-root-login medium  /etc/ssh/sshd_config.d/10-root.conf',
      'weak-password high alice /etc/shadow', 'weak-password high bob /etc/shadow', 'weak-password high dave /etc/shadow',
      'weak-password high root /etc/shadow', 'weak-password high vagrant /etc/shadow', 'weak-password medium carol /etc/shadow',
      'weak-password-locked low frank /etc/shadow',
      'world-writable medium alice /home/alice/.ssh/authorized_keys', 'world-writable medium dave /home/dave',
    ])
    const weak = Object.fromEntries(of(paths.weak).filter((f) => f.code.startsWith('weak-password')).map((f) => [f.user, f.detail]))
    expect(weak).toMatchObject({
      root: {scheme: 'yescrypt', password: 'root'}, vagrant: {scheme: 'sha512crypt', password: 'vagrant'}, alice: {scheme: 'sha256crypt', source: 'username'},
      bob: {scheme: 'md5crypt', password: 'password'}, carol: {source: 'empty'}, frank: {scheme: 'sha512crypt'},
    })
    // The admin's own list stays out of the report.
    expect(weak.dave).toEqual({scheme: 'yescrypt', source: 'admin-list', sshPasswordLogin: true})
    expect(run.stdout).not.toContain(ADMIN_WEAK_PASSWORD)
    expect(of(paths.weak).find((f) => f.code === 'insecure-key' && f.user === 'root')?.detail).toEqual({keyType: 'ssh-rsa', lines: [1]})
    expect(of(paths.weak).every((f) => f.account === blade.account && f.slot === '01')).toBe(true)
  })

  it('finds private keys left behind and a Match block that turns passwords on', () => {
    expect(brief(of(paths.leftovers))).toEqual([
      'box-host-key high  /etc/ssh', 'private-key-left medium  /home/vagrant/web/.vagrant/machines/default/virtualbox/private_key',
      'private-key-left medium  /vagrant_private_key', 'private-key-left medium vagrant /home/vagrant/.ssh/id_ed25519',
      'private-key-left medium vagrant /home/vagrant/.ssh/id_rsa', 'shared-host-key high  /etc/ssh',
      'sshd-password-auth medium  /etc/ssh/sshd_config',
    ])
    const detail = (file: string) => of(paths.leftovers).find((f) => f.file === file)?.detail
    expect(detail('/home/vagrant/.ssh/id_ed25519')).toEqual({authorizedFor: ['eve']})
    expect(detail('/home/vagrant/.ssh/id_rsa')).toEqual({authorizedFor: ['root']})
    expect(detail('/etc/ssh/sshd_config')).toEqual({setting: 'passwordauthentication yes', match: 'User eve'})
  })

  it('finds host keys shared between images and with the published box', async () => {
    const expected = (await Promise.all(keys.publicFiles.map(sshFingerprint))).sort()
    expect(result.boxes).toEqual([{path: paths.box, status: 'audited', hostKeys: expect.any(Array)}])
    expect(result.boxes![0].hostKeys.map((k) => k.fingerprint).sort()).toEqual(expected)
    const shared = (image: string, code: string) => of(image).find((f) => f.code === code)?.detail
    expect(shared(paths.weak, 'shared-host-key')).toEqual({fingerprints: expect.arrayContaining(expected), sharedWith: [`${blade.otherAccount}/02`]})
    expect(shared(paths.leftovers, 'shared-host-key')).toMatchObject({sharedWith: [`${blade.account}/01`]})
    expect(shared(paths.weak, 'box-host-key')).toMatchObject({boxes: [paths.box]})
  })

  it('reports images that are not plain qcow2 in their owner folder, without opening them', () => {
    const refused = Object.fromEntries([paths.symlink, paths.backing, paths.dataFile, paths.notOwned].map((p) => {
      const report = result.images!.find((i) => i.path === p)
      return [p, [report?.status, report?.applianceLaunches, of(p).map((f) => `${f.code} ${f.severity} ${String(f.detail?.reason)}`)]]
    }))
    expect(refused).toEqual({
      [paths.symlink]: ['refused', 0, ['image-not-plain high IMAGE_SYMLINK']],
      [paths.backing]: ['refused', 0, ['image-not-plain high BACKING_OUTSIDE']],
      [paths.dataFile]: ['refused', 0, ['image-not-plain high DATA_FILE']],
      [paths.notOwned]: ['refused', 0, ['image-not-plain high IMAGE_NOT_OWNED']],
    })
    expect(result.images!.map((i) => i.path)).not.toContain(paths.staged)
  })

  it('opens each image once, read-only, and changes nothing it audited', async () => {
    for (const p of [paths.weak, paths.leftovers]) {
      expect(result.images!.find((i) => i.path === p)).toMatchObject({status: 'audited', applianceLaunches: 1, distro: 'debian'})
    }
    for (const [path, print] of before) expect(await fingerprintOf(path), path).toBe(print)
  })
})

describe('shien audit, human output', () => {
  it('prints a table and a summary, and exits 0 when nothing is high', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shien-audit-empty-'))
    try {
      await mkdir(join(dir, 'users', blade.account, 'images'), {recursive: true})
      const clean = await runShien(['audit', '--config', await writeConfig(dir, dir)], {home: dir, env: GUESTFS_ENV})
      expect([clean.exitCode, clean.stdout.split('\n')[0]]).toEqual([0, 'No findings.'])
      await symlink(paths.weak, join(dir, 'users', blade.account, 'images', '01.qcow2'))
      const bad = await runShien(['audit', '--config', await writeConfig(dir, dir)], {home: dir, env: GUESTFS_ENV})
      expect(bad.exitCode).toBe(10)
      expect(bad.stdout).toMatch(/^ACCOUNT +SLOT +TARGET +SEVERITY +FINDING +HOW TO FIX\n/)
      expect(bad.stdout).toMatch(new RegExp(`${blade.account} +01 +${blade.account}/images/01.qcow2 +high +Not a plain qcow2`))
      expect(bad.stdout).toMatch(/Audited 1 image\(s\) \(0 audited, 1 refused, 0 failed\).*1 high, 0 medium, 0 low; exit 10/)
    } finally {
      await rm(dir, {recursive: true, force: true})
    }
  })
})
