// shien box unpublish as the built CLI: run by an instructor account that may not read the
// students' images (refused, nothing changed) and then by root; and the catalogs it leaves, as
// real Vagrant 2.3 reads them. Self-contained: a folder on this machine, no blade.
import {chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync} from 'node:fs'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runShien, SHIEN_BIN} from '../support/cli.js'
import {makeBox} from '../support/make-box.js'
import {ensureUser} from '../support/system.js'

const INSTRUCTOR = 'shien-instr1'

let work: string
let box: string
let home: string

beforeAll(async () => {
  // Under /var/tmp with mode 0755, so the instructor account can reach the folders.
  work = mkdtempSync('/var/tmp/shien-unpublish-')
  chmodSync(work, 0o755)
  home = join(work, 'home')
  mkdirSync(home)
  box = await makeBox(work, 'course.box')
  chmodSync(box, 0o644)
})
afterAll(() => rmSync(work, {recursive: true, force: true}))

async function shien(args: string[]) {
  return runShien([...args, '--json'], {home, cwd: work})
}

async function publish(to: string, version: string, extra: string[] = []) {
  const run = await shien(['box', 'publish', box, '--name', 'os101/debian12', '--version', version, '--to', to, ...extra])
  expect(run.exitCode, run.stderr).toBe(0)
  return run.json
}

const unpublishArgs = (to: string, version: string) => ['box', 'unpublish', '--name', 'os101/debian12', '--version', version, '--to', to]

/** Every path under `root` with its size and mode: what a refusal must leave as it was. */
function listing(root: string): string[] {
  return readdirSync(root, {recursive: true, encoding: 'utf8'}).sort().map((p) => {
    const s = statSync(join(root, p))
    return `${p} ${s.isDirectory() ? 'dir' : s.size} ${(s.mode & 0o777).toString(8)}`
  })
}

describe('shien box unpublish by an instructor who may not read the students\' images', () => {
  it('refuses, naming what it could not check and changing nothing; root on the blade then removes the version', async () => {
    const storage = join(work, 'storage')
    const to = join(storage, 'boxes')
    mkdirSync(to, {recursive: true})
    chmodSync(storage, 0o755)
    await publish(to, '2026.1.0')
    await publish(to, '2026.2.0', ['--no-libvirt'])
    const base = join(to, 'os101/debian12/2026.1.0/libvirt.qcow2')
    // As provisioned: each account's folders private (0700), owned here by root.
    const images = (account: string, mode: number) => {
      const d = join(storage, 'users', account, 'images')
      mkdirSync(d, {recursive: true})
      chmodSync(join(storage, 'users', account), mode)
      chmodSync(d, mode)
      return d
    }
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', base, join(images('e195701', 0o700), '01.qcow2')])
    // An account whose folder it may list, but not the image in it.
    const listable = images('e195702', 0o755)
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', join(listable, '02.qcow2'), '1M'])
    chmodSync(join(listable, '02.qcow2'), 0o600)
    // An account with nothing to hide: its standalone image is read and is no use of the base.
    const open = images('e195703', 0o755)
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', join(open, '01.qcow2'), '1M'])
    chmodSync(join(open, '01.qcow2'), 0o644)
    // The instructor owns the published boxes, as after publishing them.
    const uid = await ensureUser(INSTRUCTOR)
    await execa('chown', ['-R', String(uid), to])
    const before = listing(storage)
    const catalog = readFileSync(join(to, 'os101/debian12.json'), 'utf8')

    const run = await execa('sudo', ['-u', INSTRUCTOR, '-H', 'node', SHIEN_BIN, ...unpublishArgs(to, '2026.1.0'), '--json'], {reject: false, cwd: work})
    expect(run.exitCode, run.stderr).toBe(6)
    const {error} = JSON.parse(run.stdout)
    expect(error.code).toBe('BASE_USERS_UNCHECKED')
    expect(error.message).toMatch(/\(no read access\): e195701, e195702\/images\/02\.qcow2\.$/)
    expect(error.suggestions.join(' ')).toContain('as root on the blade')
    expect(listing(storage)).toEqual(before)
    expect(readFileSync(join(to, 'os101/debian12.json'), 'utf8')).toBe(catalog)

    // Root reads every image: e195701's overlay is then found, and named.
    const asRoot = await shien(unpublishArgs(to, '2026.1.0'))
    expect(asRoot.exitCode).toBe(6)
    expect(asRoot.json.error.code).toBe('BASE_IN_USE')
    expect(asRoot.json.error.message).toContain('(e195701 01)')
    expect(listing(storage)).toEqual(before)

    // A version without a base (--no-libvirt) has nothing to check: the instructor removes it.
    const noBase = await execa('sudo', ['-u', INSTRUCTOR, '-H', 'node', SHIEN_BIN, ...unpublishArgs(to, '2026.2.0'), '--json'], {reject: false, cwd: work})
    expect(noBase.exitCode, noBase.stderr).toBe(0)
    expect(JSON.parse(noBase.stdout).versions).toEqual(['2026.1.0'])

    rmSync(join(storage, 'users/e195701'), {recursive: true})
    const done = await shien(unpublishArgs(to, '2026.1.0'))
    expect(done.exitCode, done.stderr).toBe(0)
    expect(done.json.versions).toEqual([])
    expect(readdirSync(join(to, 'os101'))).toEqual(['debian12.json'])
  })
})

describe('catalogs after an unpublish, as Vagrant reads them', () => {
  /** Vagrant with a VAGRANT_HOME of its own, as a student's laptop. */
  const vagrant = (vagrantHome: string, args: string[]) => execa('vagrant', args, {
    env: {VAGRANT_HOME: vagrantHome, VAGRANT_CHECKPOINT_DISABLE: '1', VAGRANT_NO_COLOR: '1'},
    reject: false, all: true, stdin: 'ignore', cwd: vagrantHome,
  })

  it('no longer offers a removed version, and reads a catalog left with no versions without failing', async () => {
    const to = join(work, 'course')
    const {catalog} = await publish(to, '2026.1.0', ['--no-libvirt'])
    await publish(to, '2026.2.0', ['--no-libvirt'])
    const vagrantHome = mkdtempSync(join(work, 'vagrant-'))
    const add = await vagrant(vagrantHome, ['box', 'add', catalog.url, '--provider', 'virtualbox', '--box-version', '2026.1.0'])
    expect(add.exitCode, add.all).toBe(0)
    expect((await vagrant(vagrantHome, ['box', 'outdated', '--global'])).all).toContain('is outdated! Current: 2026.1.0. Latest: 2026.2.0')

    expect((await shien(unpublishArgs(to, '2026.2.0'))).exitCode).toBe(0)
    const latest = await vagrant(vagrantHome, ['box', 'outdated', '--global'])
    expect(latest.exitCode, latest.all).toBe(0)
    expect(latest.all).toContain("* 'os101/debian12' for 'virtualbox' (v2026.1.0) is up to date")

    expect((await shien(unpublishArgs(to, '2026.1.0'))).exitCode).toBe(0)
    const empty = await vagrant(vagrantHome, ['box', 'outdated', '--global'])
    expect(empty.exitCode, empty.all).toBe(0)
    expect(empty.all).toContain("* 'os101/debian12' for 'virtualbox' (v2026.1.0) is up to date")
    // A student adding it now is told there is nothing to add (with --provider: not for that provider).
    const none = await vagrant(mkdtempSync(join(work, 'vagrant-')), ['box', 'add', catalog.url])
    expect(none.exitCode).toBe(1)
    expect(none.all).toContain("The box you're attempting to add has no available version")
    expect(none.all).toMatch(/Available versions: *$/m)
    // The box a student already added stays usable.
    expect((await vagrant(vagrantHome, ['box', 'list'])).stdout).toContain('os101/debian12 (virtualbox, 2026.1.0)')
  }, 180_000)
})
