// shien box build and publish with the real Debian test box, over SFTP to the local blade, and
// into folders the instructor may not write (a root-owned folder for a student account, a
// read-only bind mount): each refusal leaves the existing catalog as it was.
import {createHash} from 'node:crypto'
import {chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync} from 'node:fs'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {REPO_ROOT, runShien, SHIEN_BIN} from '../support/cli.js'
import {planPublish} from '../../src/box/publish/plan.js'
import {publishBox} from '../../src/box/publish/publish.js'
import {serveDirectory, type StaticServer} from '../support/http-server.js'
import {ensureLocalBlade, type LocalBlade} from '../support/local-blade.js'
import {testBoxPath} from '../support/test-box.js'
import {makeBox} from '../support/make-box.js'

let blade: LocalBlade
let work: string
let smallBox: string
let realBox: string

beforeAll(async () => {
  ;[blade, realBox] = await Promise.all([ensureLocalBlade(), testBoxPath()])
  // Under /var/tmp with mode 0755, so the student accounts can read the box and the folders.
  work = mkdtempSync('/var/tmp/shien-publish-')
  chmodSync(work, 0o755)
  smallBox = await makeBox(work, 'course.box')
  chmodSync(smallBox, 0o644)
}, 900_000)
afterAll(() => rmSync(work, {recursive: true, force: true}))

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex')
const home = () => blade.laptopHome

async function publish(box: string, args: string[]) {
  return runShien(['box', 'publish', box, '--name', 'os101/debian12', ...args, '--json'], {home: home()})
}

/** A root-owned folder (0755) holding a published catalog, as a blade's boxes folder is. */
async function rootOwnedCatalog(name: string): Promise<{root: string; catalog: string; before: string}> {
  const root = join(work, name)
  const first = await publish(smallBox, ['--version', '2026.1.0', '--to', root, '--no-libvirt'])
  expect(first.exitCode, first.stderr).toBe(0)
  const catalog = join(root, 'os101/debian12.json')
  return {root, catalog, before: readFileSync(catalog, 'utf8')}
}

function listing(root: string): string[] {
  return readdirSync(root, {recursive: true, encoding: 'utf8'}).sort()
}

describe('shien box build', () => {
  it('built the cached test box itself (scripts/test-box.sh runs shien box build)', () => {
    const report = readFileSync(`${realBox}.built`, 'utf8')
    expect(report).toMatch(/^Built .*debian-12\.box\.tmp\.\d+ in \d+ s \(\d+ bytes, sha256 [0-9a-f]{64}\)\.$/m)
    expect(report).toContain(`sha256 ${sha256(realBox)}`)
  })

  it('tells a student account that the recipe needs root, before building', async () => {
    const run = await execa('sudo', ['-u', blade.account, '-H', 'node', SHIEN_BIN, 'box', 'build', join(REPO_ROOT, 'boxes/debian-12'), '--output', join(work, 'student.box')], {reject: false, cwd: work})
    expect(run.exitCode).toBe(6)
    expect(run.stderr).toContain('Error (BUILD_NEEDS_ROOT): Cannot build debian-12 here: it needs root')
    expect(readdirSync(work)).not.toContain('student.box')
  })
})

describe('shien box publish of the real test box', () => {
  it('converts it for libvirt: the qcow2 holds the same disk, and vagrant-libvirt adds it', async () => {
    const root = join(work, 'real')
    const run = await publish(realBox, ['--version', '2026.1.0', '--to', root])
    expect(run.exitCode, run.stderr).toBe(0)
    const base = run.json.base.path
    expect(statSync(base).mode & 0o777).toBe(0o444)
    const vmdk = join(work, 'box-disk001.vmdk')
    await execa('tar', ['-xf', realBox, '-C', work, 'box-disk001.vmdk'])
    const vmdkInfo = JSON.parse((await execa('qemu-img', ['info', '--output=json', '-f', 'vmdk', vmdk])).stdout)
    const baseInfo = JSON.parse((await execa('qemu-img', ['info', '--output=json', '-f', 'qcow2', base])).stdout)
    expect(baseInfo['virtual-size']).toBe(vmdkInfo['virtual-size'])
    expect(run.json.base.virtualSizeGiB).toBe(Math.ceil(vmdkInfo['virtual-size'] / 2 ** 30))
    const compare = await execa('qemu-img', ['compare', '-f', 'vmdk', '-F', 'qcow2', vmdk, base], {reject: false})
    expect(compare.stdout, compare.stderr).toContain('Images are identical')
    rmSync(vmdk)
    const vagrantHome = mkdtempSync(join(work, 'vagrant-'))
    const add = await execa('vagrant', ['box', 'add', run.json.catalog.url, '--provider', 'libvirt'], {env: {VAGRANT_HOME: vagrantHome, VAGRANT_CHECKPOINT_DISABLE: '1'}, reject: false, all: true})
    expect(add.exitCode, add.all).toBe(0)
    expect(sha256(join(vagrantHome, 'boxes/os101-VAGRANTSLASH-debian12/2026.1.0/libvirt/box.img'))).toBe(sha256(base))
    const verify = await runShien(['box', 'verify', run.json.catalog.url, '--json'], {home: home()})
    expect(verify.exitCode, verify.stderr).toBe(0)
    expect(verify.json.boxes.map((b: {provider: string; checksum: string}) => `${b.provider} ${b.checksum}`)).toEqual(['virtualbox ok', 'libvirt ok'])
  }, 300_000)
})

describe('shien box publish over SFTP', () => {
  let server: StaticServer
  afterAll(() => server?.close())

  it('publishes into a folder the account owns on the blade, for Vagrant to add over HTTP', async () => {
    const root = join(work, 'sftp')
    mkdirSync(root)
    chownSync(root, Number((await execa('id', ['-u', blade.account])).stdout), -1)
    server = await serveDirectory(root)
    const run = await publish(smallBox, ['--version', '2026.1.0', '--to', `sftp://${blade.hostAlias}${root}`, '--base-url', server.url])
    expect(run.exitCode, run.stderr).toBe(0)
    const versionDir = join(root, 'os101/debian12/2026.1.0')
    expect(readdirSync(versionDir).sort()).toEqual(['libvirt.box', 'libvirt.manifest', 'libvirt.platform.json', 'libvirt.qcow2', 'virtualbox.box'])
    expect(statSync(join(versionDir, 'virtualbox.box')).uid).toBe(statSync(root).uid)
    expect(sha256(join(versionDir, 'virtualbox.box'))).toBe(sha256(smallBox))
    expect(statSync(join(versionDir, 'libvirt.qcow2')).mode & 0o777).toBe(0o444)
    const vagrantHome = mkdtempSync(join(work, 'vagrant-'))
    const add = await execa('vagrant', ['box', 'add', run.json.catalog.url, '--provider', 'virtualbox'], {env: {VAGRANT_HOME: vagrantHome, VAGRANT_CHECKPOINT_DISABLE: '1'}, reject: false, all: true})
    expect(add.exitCode, add.all).toBe(0)
  })

  it('stops when interrupted mid-copy and leaves neither copies nor the lock on the blade', async () => {
    const root = join(work, 'sftp-interrupted')
    mkdirSync(root)
    chownSync(root, Number((await execa('id', ['-u', blade.account])).stdout), -1)
    const plan = planPublish({
      box: realBox, name: 'os101/debian12', version: '2026.1.0', to: `sftp://${blade.hostAlias}${root}`,
      baseUrl: 'https://blade.example/boxes', libvirt: false, cwd: work, home: home(),
    })
    const abort = new AbortController()
    let copied = 0
    const error = await publishBox(plan, {
      signal: abort.signal,
      onEvent: (event) => {
        if (event.type !== 'progress' || event.stage !== 'copy') return
        copied = event.bytes
        abort.abort(new Error('interrupted'))
      },
    }).then(() => undefined, (e: unknown) => e)
    expect(String(error)).toContain('interrupted')
    expect(copied).toBeGreaterThan(0)
    expect(copied).toBeLessThan(statSync(realBox).size)
    // Only the catalog's folder, made before the lock was taken, stays: empty.
    expect(listing(root)).toEqual(['os101'])
  })

  it('refuses a root-owned folder on the blade and leaves its catalog as it was', async () => {
    const {root, catalog, before} = await rootOwnedCatalog('sftp-root-owned')
    const files = listing(root)
    const run = await publish(smallBox, ['--version', '2026.2.0', '--to', `sftp://${blade.hostAlias}${root}`, '--base-url', 'https://blade.example/boxes'])
    expect(run.exitCode).toBe(6)
    expect(run.json.error.code).toBe('PUBLISH_NOT_WRITABLE')
    expect(run.json.error.message).toContain('permission denied')
    expect(readFileSync(catalog, 'utf8')).toBe(before)
    expect(listing(root)).toEqual(files)
  })
})

describe('shien box publish into a folder the instructor may not write', () => {
  it('refuses a root-owned folder when run as a student account', async () => {
    const {root, catalog, before} = await rootOwnedCatalog('root-owned')
    const files = listing(root)
    const run = await execa('sudo', ['-u', blade.account, '-H', 'node', SHIEN_BIN, 'box', 'publish', smallBox, '--name', 'os101/debian12', '--version', '2026.2.0', '--to', root], {reject: false, cwd: work})
    expect(run.exitCode).toBe(6)
    expect(run.stderr).toMatch(/Error \(PUBLISH_NOT_WRITABLE\): Cannot write .*\/os101 on this machine: permission denied\./)
    expect(readFileSync(catalog, 'utf8')).toBe(before)
    expect(listing(root)).toEqual(files)
  })

  it('refuses a read-only bind mount', async () => {
    const {root, catalog, before} = await rootOwnedCatalog('read-only-source')
    const mount = join(work, 'read-only')
    mkdirSync(mount)
    await execa('mount', ['--bind', root, mount])
    try {
      await execa('mount', ['-o', 'remount,bind,ro', mount])
      const run = await publish(smallBox, ['--version', '2026.2.0', '--to', mount])
      expect(run.exitCode).toBe(6)
      expect(run.json.error.code).toBe('PUBLISH_NOT_WRITABLE')
      expect(run.json.error.message).toContain('the file system is read-only')
    } finally {
      await execa('umount', [mount])
    }
    expect(readFileSync(catalog, 'utf8')).toBe(before)
    expect(readdirSync(join(root, 'os101')).sort()).toEqual(['debian12', 'debian12.json'])
  })
})

