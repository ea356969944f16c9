import {createHash} from 'node:crypto'
import {mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {LocalTarget} from '../../../src/box/publish/local-target.js'
import {planPublish, type PublishInput} from '../../../src/box/publish/plan.js'
import {publishBox} from '../../../src/box/publish/publish.js'
import type {PublishTarget} from '../../../src/box/publish/target.js'
import {manifestOfImage} from '../../../src/delta/image-manifest.js'
import {parseManifest} from '../../../src/delta/manifest.js'
import {ShienError} from '../../../src/errors.js'
import type {PipelineEvent} from '../../../src/pipeline/events.js'
import {makeBox, makeOvf, readTar, tempDir} from '../../support/make-box.js'

let dir: string
let cleanup: () => Promise<void>
let box: string
beforeAll(async () => {
  ;({dir, cleanup} = await tempDir())
  box = await makeBox(dir, 'course.box')
})
afterAll(() => cleanup())

let count = 0
/** A fresh destination folder per test. */
function destination(): string {
  const to = join(dir, `dest-${++count}`)
  mkdirSync(to)
  return to
}

function plan(to: string, over: Partial<PublishInput> = {}) {
  return planPublish({box, name: 'os101/debian12', version: '2026.1.0', to, cwd: dir, ...over})
}

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex')
const sha256Of = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')

/** Every file under `root`, relative, sorted: what a failed publish must leave unchanged. */
function tree(root: string): Record<string, string> {
  const out: Record<string, string> = {}
  const walk = (d: string) => {
    for (const name of readdirSync(d, {withFileTypes: true})) {
      const path = join(d, name.name)
      if (name.isDirectory()) walk(path)
      else out[path.slice(root.length + 1)] = sha256(path)
    }
  }
  walk(root)
  return out
}

async function refusal(promise: Promise<unknown>): Promise<ShienError> {
  const error = await promise.then(() => undefined, (e: unknown) => e)
  expect(error).toBeInstanceOf(ShienError)
  return error as ShienError
}

describe('shien box publish to a folder', () => {
  it('writes both providers and a catalog whose checksums match the files', async () => {
    const to = destination()
    const events: PipelineEvent[] = []
    const result = await publishBox(plan(to, {description: 'OS course'}), {onEvent: (e) => events.push(e)})
    const catalog = JSON.parse(readFileSync(join(to, 'os101/debian12.json'), 'utf8'))
    expect(catalog).toMatchObject({name: 'os101/debian12', description: 'OS course', versions: [{version: '2026.1.0'}]})
    const [vb, lv] = catalog.versions[0].providers
    const versionDir = join(to, 'os101/debian12/2026.1.0')
    expect(vb).toEqual({name: 'virtualbox', url: `file://${versionDir}/virtualbox.box`, checksum_type: 'sha256', checksum: sha256(box), architecture: 'amd64', default_architecture: true})
    expect(lv).toMatchObject({name: 'libvirt', url: `file://${versionDir}/libvirt.box`, checksum_type: 'sha256', architecture: 'amd64'})
    expect(lv.checksum).toBe(sha256(join(versionDir, 'libvirt.box')))
    expect(readFileSync(join(versionDir, 'virtualbox.box'))).toEqual(readFileSync(box))
    expect(readdirSync(versionDir).sort()).toEqual(['libvirt.box', 'libvirt.manifest', 'libvirt.platform.json', 'libvirt.qcow2', 'virtualbox.box'])
    expect(statSync(join(versionDir, 'libvirt.qcow2')).mode & 0o777).toBe(0o444)
    // What the base boots as, for delta pushes' overlays: the box declares no firmware, so BIOS.
    expect(readFileSync(join(versionDir, 'libvirt.platform.json'), 'utf8')).toBe('{"architecture":"amd64","firmware":"bios"}\n')
    expect(statSync(join(versionDir, 'libvirt.platform.json')).mode & 0o777).toBe(0o444)
    // The base's block manifest, for delta pushes: read-only like the base, and the base's own.
    expect(statSync(join(versionDir, 'libvirt.manifest')).mode & 0o777).toBe(0o444)
    const manifest = parseManifest(readFileSync(join(versionDir, 'libvirt.manifest')))
    expect(manifest.diskHash.equals((await manifestOfImage(join(versionDir, 'libvirt.qcow2'), {format: 'qcow2'})).diskHash)).toBe(true)
    expect(result.files.map((f) => f.provider)).toEqual(['virtualbox', 'libvirt'])
    expect(result.catalog.url).toBe(`file://${to}/os101/debian12.json`)
    expect(events.filter((e) => e.type === 'stage:start').map((e) => e.stage)).toEqual(['inspect', 'lock', 'checksum', 'convert', 'copy', 'catalog'])
    expect(readdirSync(join(to, 'os101')).sort()).toEqual(['debian12', 'debian12.json'])
  })

  it('publishes a box of Vagrant\'s oldest format with the metadata.json Vagrant\'s upgrade writes', async () => {
    const to = destination()
    const old = await makeBox(dir, 'v1.box', {metadata: false})
    const result = await publishBox(planPublish({box: old, name: 'os101/debian12', version: '2026.1.0', to, cwd: dir, libvirt: false}))
    const published = join(to, 'os101/debian12/2026.1.0/virtualbox.box')
    const entries = await readTar(readFileSync(published))
    const original = await readTar(readFileSync(old))
    expect(entries.map((e) => e.name)).toEqual([...original.map((e) => e.name), 'metadata.json'])
    expect(entries.at(-1)?.body.toString()).toBe('{"provider":"virtualbox"}')
    for (const [i, entry] of original.entries()) expect(sha256Of(entries[i].body)).toBe(sha256Of(entry.body))
    const catalog = JSON.parse(readFileSync(join(to, 'os101/debian12.json'), 'utf8'))
    expect(catalog.versions[0].providers[0].checksum).toBe(sha256(published))
    expect(result.warnings.join('\n')).toContain('{"provider":"virtualbox"}')
  })

  it('lists an arm64 box as arm64, and refuses an --architecture the box contradicts', async () => {
    const ovf = readFileSync(join(import.meta.dirname, '../../fixtures/vbox71/box-arm64.ovf'), 'utf8')
    const arm = await makeBox(dir, 'arm64.box', {ovf, metadata: {provider: 'virtualbox', architecture: 'arm64'}})
    const to = destination()
    await publishBox(planPublish({box: arm, name: 'os101/debian12', version: '2026.1.0', to, cwd: dir, libvirt: false}))
    const catalog = JSON.parse(readFileSync(join(to, 'os101/debian12.json'), 'utf8'))
    expect(catalog.versions[0].providers[0]).toMatchObject({name: 'virtualbox', architecture: 'arm64'})
    const before = tree(to)
    const error = await refusal(publishBox(planPublish({box: arm, name: 'os101/debian12', version: '2026.2.0', to, cwd: dir, libvirt: false, architecture: 'amd64'})))
    expect(error.code).toBe('BOX_ARCH_CONFLICT')
    expect(error.message).toContain('--architecture amd64 does not match the box: metadata.json ("architecture": "arm64") and box.ovf (<Platform architecture="ARM">) and box.ovf (OS type Debian12_arm64) say arm64')
    expect(tree(to)).toEqual(before)
  })

  it('refuses a box of another provider than VirtualBox (PUBLISH_PROVIDER_UNSUPPORTED)', async () => {
    const img = join(dir, 'pub-box.img')
    await execa('qemu-img', ['create', '-f', 'qcow2', img, '1M'])
    const libvirtBox = await makeBox(dir, 'libvirt-only.box', {disks: [], ovf: false, metadata: {provider: 'libvirt', format: 'qcow2'}, extra: [{name: 'box.img', body: readFileSync(img)}]})
    const to = destination()
    const error = await refusal(publishBox(planPublish({box: libvirtBox, name: 'os101/debian12', version: '2026.1.0', to, cwd: dir})))
    expect(error.code).toBe('PUBLISH_PROVIDER_UNSUPPORTED')
    expect(readdirSync(to)).toEqual([])
  })

  it('packs the libvirt box as vagrant-libvirt reads it: metadata.json, Vagrantfile, qcow2 box.img', async () => {
    const to = destination()
    await publishBox(plan(to))
    const versionDir = join(to, 'os101/debian12/2026.1.0')
    const entries = await readTar(readFileSync(join(versionDir, 'libvirt.box')))
    expect(entries.map((e) => e.name)).toEqual(['metadata.json', 'Vagrantfile', 'box.img'])
    expect(JSON.parse(entries[0].body.toString())).toEqual({provider: 'libvirt', format: 'qcow2', virtual_size: 1})
    expect(entries[1].body.toString()).toContain('config.vm.provider :libvirt')
    expect(entries[1].body.toString()).toContain('Vagrant.configure("2") do |config|\nend')
    const info = JSON.parse((await execa('qemu-img', ['info', '--output=json', '-f', 'qcow2', join(versionDir, 'libvirt.qcow2')])).stdout)
    expect(info).toMatchObject({format: 'qcow2', 'virtual-size': 1048576})
    expect(info['backing-filename']).toBeUndefined()
    // Compared by hash: a deep equality over a megabyte of bytes takes seconds.
    expect(createHash('sha256').update(entries[2].body).digest('hex')).toBe(sha256(join(versionDir, 'libvirt.qcow2')))
  })

  it('adds a second version and keeps the first; the same version again is refused unless --force', async () => {
    const to = destination()
    await publishBox(plan(to, {version: '2026.1.0', libvirt: false}))
    const second = await publishBox(plan(to, {version: '2026.2.0', libvirt: false}))
    expect(second.versions).toEqual(['2026.1.0', '2026.2.0'])
    const before = tree(to)
    const error = await refusal(publishBox(plan(to, {version: '2026.1.0', libvirt: false})))
    expect(error.code).toBe('VERSION_EXISTS')
    expect(error.exitCode).toBe(6)
    expect(tree(to)).toEqual(before)
    const other = await makeBox(dir, 'other.box', {vagrantfile: false})
    const forced = await publishBox(planPublish({box: other, name: 'os101/debian12', version: '2026.1.0', to, cwd: dir, force: true, libvirt: false}))
    expect(forced.replaced).toBe(true)
    const catalog = JSON.parse(readFileSync(join(to, 'os101/debian12.json'), 'utf8'))
    expect(catalog.versions.map((v: {version: string}) => v.version)).toEqual(['2026.1.0', '2026.2.0'])
    expect(catalog.versions[0].providers[0].checksum).toBe(sha256(other))
    expect(catalog.versions[1].providers[0].checksum).toBe(sha256(box))
  })

  it('refuses --force over a version whose base students\' images are overlays of, naming them', async () => {
    const storage = destination()
    const to = join(storage, 'boxes')
    mkdirSync(to)
    await publishBox(plan(to))
    const base = join(to, 'os101/debian12/2026.1.0/libvirt.qcow2')
    const images = (account: string) => {
      const d = join(storage, 'users', account, 'images')
      mkdirSync(d, {recursive: true})
      return d
    }
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', join(images('e195701'), '01.qcow2')])
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', join(images('e195702'), '.02.new.qcow2')])
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', join(images('e195703'), '01.qcow2'), '1M'])
    const before = tree(to)
    const error = await refusal(publishBox(plan(to, {force: true})))
    expect(error.code).toBe('BASE_IN_USE')
    expect(error.exitCode).toBe(6)
    expect(error.message).toContain('(e195701 01, e195702 02.new)')
    expect(tree(to)).toEqual(before)
    // Once no image uses it, the version can be replaced.
    rmSync(join(storage, 'users'), {recursive: true})
    expect((await publishBox(plan(to, {force: true}))).replaced).toBe(true)
  })

  it('refuses a version Vagrant would not accept before touching anything', () => {
    const to = destination()
    expect(() => plan(to, {version: 'v2026.1'})).toThrow(/Vagrant would not accept the version "v2026.1"/)
    expect(() => plan(to, {version: '2026.1 beta'})).toThrow(ShienError)
    expect(readdirSync(to)).toEqual([])
  })

  it('reports every bad input at once', () => {
    let error: ShienError | undefined
    try {
      planPublish({box, name: 'Debian 12', version: 'latest', to: 'sftp://blade/gfs2/shien/boxes', architecture: 'x86', cwd: dir, home: dir})
    } catch (e) {
      error = e as ShienError
    }
    expect(error?.code).toBe('PUBLISH_BAD_INPUT')
    for (const part of ['"Debian 12" is not a box name', '"latest"', '"x86" is not an architecture', '--base-url is needed']) expect(error?.message).toContain(part)
  })

  it('refuses a box whose metadata.json names another provider than its contents', async () => {
    const to = destination()
    await publishBox(plan(to, {libvirt: false}))
    const before = tree(to)
    const libvirtLabelled = await makeBox(dir, 'mislabelled.box', {metadata: {provider: 'libvirt'}})
    const error = await refusal(publishBox(planPublish({box: libvirtLabelled, name: 'os101/debian12', version: '2026.3.0', to, cwd: dir})))
    expect(error.code).toBe('BOX_PROVIDER_MISMATCH')
    expect(error.message).toMatch(/names the provider "libvirt", but the box holds a VirtualBox machine \(box\.ovf and box-disk001\.vmdk\)/)
    expect(tree(to)).toEqual(before)
  })

  it.each([
    ['not JSON', '<html><body>502 Bad Gateway</body></html>\n', 'CATALOG_NOT_JSON'],
    ['an unknown provider', JSON.stringify({name: 'os101/debian12', versions: [{version: '2026.0.1', providers: [{name: 'vbox', url: 'file:///x.box'}]}]}), 'CATALOG_UNKNOWN_PROVIDER'],
    ['another box', JSON.stringify({name: 'os102/ubuntu', versions: []}), 'CATALOG_NAME_MISMATCH'],
  ])('leaves an existing catalog that is %s as it was', async (_what, text, code) => {
    const to = destination()
    mkdirSync(join(to, 'os101'))
    writeFileSync(join(to, 'os101/debian12.json'), text)
    const error = await refusal(publishBox(plan(to)))
    expect(error.code).toBe(code)
    expect(readFileSync(join(to, 'os101/debian12.json'), 'utf8')).toBe(text)
    expect(readdirSync(join(to, 'os101'))).toEqual(['debian12.json'])
  })

  it('refuses to run while another publish holds the catalog', async () => {
    const to = destination()
    mkdirSync(join(to, 'os101'))
    writeFileSync(join(to, 'os101/.debian12.json.lock'), '{"user":"teacher1"}\n')
    const error = await refusal(publishBox(plan(to)))
    expect(error.code).toBe('PUBLISH_LOCKED')
    expect(error.message).toContain('teacher1')
    expect(readdirSync(join(to, 'os101'))).toEqual(['.debian12.json.lock'])
  })

  it('stops when cancelled and leaves neither files nor the lock', async () => {
    const to = destination()
    const abort = new AbortController()
    const error = await publishBox(plan(to), {
      signal: abort.signal,
      onEvent: (e) => {
        if (e.type === 'stage:start' && e.stage === 'copy') abort.abort(new Error('interrupted'))
      },
    }).then(() => undefined, (e: unknown) => e)
    expect(String(error)).toContain('interrupted')
    // Only the catalog's folder, made before the lock was taken, is left: empty.
    expect(readdirSync(to, {recursive: true})).toEqual(['os101'])
  })
})

/** The local target with every undoing call recorded (paths relative to `root`), and one call made to fail. */
function recordingTarget(root: string, failOn?: {method: 'rename' | 'remove'; path: RegExp}) {
  const local = new LocalTarget()
  const log: string[] = []
  const rel = (path: string) => path.slice(root.length + 1).replace(/\.tmp-[0-9a-f]+$/, '.tmp')
  const fail = (method: string, path: string) => {
    if (failOn?.method === method && failOn.path.test(path)) throw new Error(`${method} ${rel(path)} failed`)
  }
  const target: PublishTarget = Object.assign(Object.create(local) as PublishTarget, {
    rename: async (from: string, to: string) => (fail('rename', to), local.rename(from, to)),
    remove: async (path: string) => (log.push(`remove ${rel(path)}`), fail('remove', path), local.remove(path)),
    removeEmptyDir: async (path: string) => (log.push(`rmdir ${rel(path)}`), local.removeEmptyDir(path)),
    close: async () => void log.push('close'),
  })
  return {target, log}
}

describe('the cleanup of a publish, stage by stage', () => {
  it('undoes the stages in reverse: placed files, then temporary copies and folders, then the lock, then the destination', async () => {
    const to = destination()
    const {target, log} = recordingTarget(to, {method: 'rename', path: /debian12\.json$/})
    const error = await publishBox(plan(to, {libvirt: false}), {target}).then(() => undefined, (e: unknown) => e)
    expect(String(error)).toContain('rename os101/debian12.json failed')
    expect(log).toEqual([
      // catalog: the box renamed into place is not listed anywhere, so it goes
      'remove os101/debian12/2026.1.0/virtualbox.box',
      // copy: what is still under a temporary name, then the version's folders
      'remove os101/.debian12.json.tmp',
      'rmdir os101/debian12/2026.1.0',
      'rmdir os101/debian12',
      // lock: the lock file, then the connection
      'remove os101/.debian12.json.lock',
      'close',
    ])
    expect(readdirSync(to, {recursive: true})).toEqual(['os101'])
  })

  it('when cancelled during the copy, removes the copies and the lock, and keeps a replaced version\'s folder', async () => {
    const to = destination()
    await publishBox(plan(to, {libvirt: false}))
    const before = tree(to)
    const abort = new AbortController()
    const {target, log} = recordingTarget(to)
    const run = publishBox(plan(to, {libvirt: false, force: true}), {
      target,
      signal: abort.signal,
      onEvent: (e) => {
        if (e.type === 'progress' && e.stage === 'copy') abort.abort(new Error('interrupted'))
      },
    })
    await expect(run).rejects.toThrow('interrupted')
    expect(log).toEqual(['remove os101/debian12/2026.1.0/.virtualbox.box.tmp', 'remove os101/.debian12.json.lock', 'close'])
    expect(tree(to)).toEqual(before)
  })

  it('fails a publish whose lock it cannot remove, after closing the destination', async () => {
    const to = destination()
    const {target, log} = recordingTarget(to, {method: 'remove', path: /\.lock$/})
    await expect(publishBox(plan(to, {libvirt: false}), {target})).rejects.toThrow('remove os101/.debian12.json.lock failed')
    expect(log).toEqual(['remove os101/.debian12.json.lock', 'close'])
  })
})

describe('one version with boxes of several architectures', () => {
  const arm64Ovf = () => readFileSync(join(import.meta.dirname, '../../fixtures/vbox71/box-arm64.ovf'), 'utf8')
  const armBox = (name: string, over: Parameters<typeof makeBox>[2] = {}) => makeBox(dir, name, {ovf: arm64Ovf(), metadata: {provider: 'virtualbox', architecture: 'arm64'}, ...over})
  const readCatalog = (to: string) => JSON.parse(readFileSync(join(to, 'os101/debian12.json'), 'utf8'))
  const summary = (to: string) => readCatalog(to).versions.map((v: {version: string; providers: Array<Record<string, unknown>>}) => ({
    version: v.version, providers: v.providers.map((p) => `${p.name as string} ${p.architecture as string}${p.default_architecture === true ? ' default' : ''}`),
  }))

  it('adds an arm64 box to a version that has the amd64 one: its own files, entries before the amd64 defaults', async () => {
    const to = destination()
    await publishBox(plan(to))
    const versionDir = join(to, 'os101/debian12/2026.1.0')
    const amd64Files = tree(versionDir)
    const arm = await armBox('multi-arm64.box')
    const result = await publishBox(planPublish({box: arm, name: 'os101/debian12', version: '2026.1.0', to, cwd: dir}))
    expect(result.architecture).toBe('arm64')
    expect(result.replaced).toBe(false)
    expect(readdirSync(versionDir).sort()).toEqual([
      'libvirt-arm64.box', 'libvirt-arm64.manifest', 'libvirt-arm64.platform.json', 'libvirt-arm64.qcow2',
      'libvirt.box', 'libvirt.manifest', 'libvirt.platform.json', 'libvirt.qcow2', 'virtualbox-arm64.box', 'virtualbox.box',
    ])
    // Each base says what it boots as: an Arm machine boots with UEFI.
    expect(JSON.parse(readFileSync(join(versionDir, 'libvirt-arm64.platform.json'), 'utf8'))).toEqual({architecture: 'arm64', firmware: 'efi'})
    // The amd64 files are the ones the first publish wrote, byte for byte.
    for (const [name, hash] of Object.entries(amd64Files)) expect(sha256(join(versionDir, name)), name).toBe(hash)
    expect(readFileSync(join(versionDir, 'virtualbox-arm64.box'))).toEqual(readFileSync(arm))
    const catalog = readCatalog(to)
    expect(catalog.versions).toHaveLength(1)
    // Vagrant 2.3 keys providers by name, so the last entry of a name is the one it takes: the default.
    expect(catalog.versions[0].providers).toEqual([
      {name: 'virtualbox', url: `file://${versionDir}/virtualbox-arm64.box`, checksum_type: 'sha256', checksum: sha256(arm), architecture: 'arm64', default_architecture: false},
      {name: 'libvirt', url: `file://${versionDir}/libvirt-arm64.box`, checksum_type: 'sha256', checksum: sha256(join(versionDir, 'libvirt-arm64.box')), architecture: 'arm64', default_architecture: false},
      {name: 'virtualbox', url: `file://${versionDir}/virtualbox.box`, checksum_type: 'sha256', checksum: sha256(box), architecture: 'amd64', default_architecture: true},
      {name: 'libvirt', url: `file://${versionDir}/libvirt.box`, checksum_type: 'sha256', checksum: amd64Files['libvirt.box'], architecture: 'amd64', default_architecture: true},
    ])
    expect(result.files.map((f) => [f.provider, f.architecture, f.path])).toEqual([
      ['virtualbox', 'arm64', join(versionDir, 'virtualbox-arm64.box')],
      ['libvirt', 'arm64', join(versionDir, 'libvirt-arm64.box')],
    ])
    expect(result.base?.path).toBe(join(versionDir, 'libvirt-arm64.qcow2'))
    // Each base's manifest is its own base's.
    for (const suffix of ['', '-arm64']) {
      const manifest = parseManifest(readFileSync(join(versionDir, `libvirt${suffix}.manifest`)))
      expect(manifest.diskHash.equals((await manifestOfImage(join(versionDir, `libvirt${suffix}.qcow2`), {format: 'qcow2'})).diskHash)).toBe(true)
    }
    expect(result.warnings).toContain('Vagrant 2.3 and older ignore architectures and get the amd64 box for virtualbox of 2026.1.0 (the version\'s default); Vagrant 2.4 picks this arm64 box on arm64 hosts.')
  })

  it('refuses the same (provider, architecture) again, and --force replaces that pair only', async () => {
    const to = destination()
    await publishBox(plan(to, {libvirt: false}))
    const arm = await armBox('pair-arm64.box')
    await publishBox(planPublish({box: arm, name: 'os101/debian12', version: '2026.1.0', to, cwd: dir, libvirt: false}))
    const before = tree(to)
    const error = await refusal(publishBox(planPublish({box: arm, name: 'os101/debian12', version: '2026.1.0', to, cwd: dir, libvirt: false})))
    expect(error.code).toBe('VERSION_EXISTS')
    expect(error.exitCode).toBe(6)
    expect(error.message).toBe(`os101/debian12 2026.1.0 already has the arm64 box for virtualbox (${join(to, 'os101/debian12.json')}).`)
    expect(tree(to)).toEqual(before)
    // The amd64 one again is refused just the same.
    expect((await refusal(publishBox(plan(to, {libvirt: false})))).message).toContain('already has the amd64 box for virtualbox')
    expect(tree(to)).toEqual(before)

    const otherArm = await armBox('pair-arm64-2.box', {vagrantfile: false})
    const forced = await publishBox(planPublish({box: otherArm, name: 'os101/debian12', version: '2026.1.0', to, cwd: dir, libvirt: false, force: true}))
    expect(forced.replaced).toBe(true)
    const after = tree(to)
    expect(after['os101/debian12/2026.1.0/virtualbox-arm64.box']).toBe(sha256(otherArm))
    expect(after['os101/debian12/2026.1.0/virtualbox.box']).toBe(before['os101/debian12/2026.1.0/virtualbox.box'])
    const [armEntry, amdEntry] = readCatalog(to).versions[0].providers
    expect(armEntry).toMatchObject({architecture: 'arm64', checksum: sha256(otherArm), default_architecture: false})
    expect(amdEntry).toMatchObject({architecture: 'amd64', checksum: sha256(box), default_architecture: true})
    expect(summary(to)).toEqual([{version: '2026.1.0', providers: ['virtualbox arm64', 'virtualbox amd64 default']}])
  })

  it('keeps the architecture published first as the default, last in the list, whichever it is', async () => {
    const to = destination()
    const arm = await armBox('first-arm64.box')
    await publishBox(planPublish({box: arm, name: 'os101/debian12', version: '2026.1.0', to, cwd: dir, libvirt: false}))
    const result = await publishBox(plan(to, {libvirt: false}))
    expect(summary(to)).toEqual([{version: '2026.1.0', providers: ['virtualbox amd64', 'virtualbox arm64 default']}])
    expect(result.warnings).toContain('Vagrant 2.3 and older ignore architectures and get the arm64 box for virtualbox of 2026.1.0 (the version\'s default); Vagrant 2.4 picks this amd64 box on amd64 hosts.')
    // A later version is a catalog entry of its own, with its own default.
    await publishBox(plan(to, {libvirt: false, version: '2026.2.0'}))
    expect(summary(to)[1]).toEqual({version: '2026.2.0', providers: ['virtualbox amd64 default']})
  })

  it('replaces one architecture\'s base only: overlays of the other base do not stop it, overlays of its own do', async () => {
    const storage = destination()
    const to = join(storage, 'boxes')
    mkdirSync(to)
    await publishBox(plan(to))
    const arm = await armBox('base-arm64.box')
    await publishBox(planPublish({box: arm, name: 'os101/debian12', version: '2026.1.0', to, cwd: dir}))
    const versionDir = join(to, 'os101/debian12/2026.1.0')
    const images = join(storage, 'users', 'e195701', 'images')
    mkdirSync(images, {recursive: true})
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', join(versionDir, 'libvirt.qcow2'), '-F', 'qcow2', join(images, '01.qcow2')])
    const forceArm = () => publishBox(planPublish({box: arm, name: 'os101/debian12', version: '2026.1.0', to, cwd: dir, force: true}))
    expect((await forceArm()).replaced).toBe(true)
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', join(versionDir, 'libvirt-arm64.qcow2'), '-F', 'qcow2', join(images, '02.qcow2')])
    const before = tree(to)
    const error = await refusal(forceArm())
    expect(error.code).toBe('BASE_IN_USE')
    expect(error.message).toContain(`its base ${join(versionDir, 'libvirt-arm64.qcow2')} (e195701 02)`)
    expect(tree(to)).toEqual(before)
  })

  it('when an added architecture fails, takes away only its own files and leaves the version as it was', async () => {
    const to = destination()
    await publishBox(plan(to))
    const before = tree(to)
    const arm = await armBox('cancel-arm64.box')
    const armPlan = () => planPublish({box: arm, name: 'os101/debian12', version: '2026.1.0', to, cwd: dir})
    const abort = new AbortController()
    const cancelled = publishBox(armPlan(), {
      signal: abort.signal,
      onEvent: (e) => {
        if (e.type === 'progress' && e.stage === 'copy') abort.abort(new Error('interrupted'))
      },
    })
    await expect(cancelled).rejects.toThrow('interrupted')
    expect(tree(to)).toEqual(before)
    // Failing at the catalog's rename, after the arm64 files were renamed into place.
    const {target, log} = recordingTarget(to, {method: 'rename', path: /debian12\.json$/})
    await expect(publishBox(armPlan(), {target})).rejects.toThrow('rename os101/debian12.json failed')
    expect(log.filter((l) => l.startsWith('remove os101/debian12/'))).toEqual([
      'remove os101/debian12/2026.1.0/virtualbox-arm64.box', 'remove os101/debian12/2026.1.0/libvirt-arm64.box', 'remove os101/debian12/2026.1.0/libvirt-arm64.qcow2',
      'remove os101/debian12/2026.1.0/libvirt-arm64.manifest', 'remove os101/debian12/2026.1.0/libvirt-arm64.platform.json',
    ])
    expect(tree(to)).toEqual(before)
  })

  it('records a UEFI box\'s base as UEFI, for the overlays delta pushes make on it', async () => {
    const to = destination()
    const efi = await makeBox(dir, 'efi.box', {ovf: makeOvf([{name: 'box-disk001.vmdk'}], {efi: true})})
    await publishBox(planPublish({box: efi, name: 'os101/debian12', version: '2026.1.0', to, cwd: dir}))
    expect(JSON.parse(readFileSync(join(to, 'os101/debian12/2026.1.0/libvirt.platform.json'), 'utf8'))).toEqual({architecture: 'amd64', firmware: 'efi'})
  })

  it('refuses a box of unknown architecture beside another one, and a name a version published before holds', async () => {
    const to = destination()
    await publishBox(plan(to, {libvirt: false}))
    const before = tree(to)
    const error = await refusal(publishBox(plan(to, {libvirt: false, architecture: 'unknown'})))
    expect(error.code).toBe('VERSION_ARCH_UNKNOWN')
    expect(error.message).toContain('cannot list a box of unknown architecture for virtualbox beside the amd64 one')
    expect(tree(to)).toEqual(before)

    // A version published before versions held several architectures: its arm64 box is virtualbox.box.
    const old = destination()
    const arm = await armBox('legacy-arm64.box')
    const versionDir = join(old, 'os101/debian12/2026.1.0')
    mkdirSync(versionDir, {recursive: true})
    writeFileSync(join(versionDir, 'virtualbox.box'), readFileSync(arm))
    writeFileSync(join(old, 'os101/debian12.json'), JSON.stringify({name: 'os101/debian12', versions: [{version: '2026.1.0', providers: [
      {name: 'virtualbox', url: `file://${versionDir}/virtualbox.box`, checksum_type: 'sha256', checksum: sha256(arm), architecture: 'arm64', default_architecture: true},
    ]}]}))
    const legacy = tree(old)
    const taken = await refusal(publishBox(plan(old, {libvirt: false})))
    expect(taken.code).toBe('VERSION_FILES_TAKEN')
    expect(taken.message).toContain(`already has ${join(versionDir, 'virtualbox.box')}, which the catalog does not list as this box's`)
    expect(tree(old)).toEqual(legacy)

    // An entry without any architecture (a catalog written by hand or by older tools).
    const bare = destination()
    mkdirSync(join(bare, 'os101'))
    writeFileSync(join(bare, 'os101/debian12.json'), JSON.stringify({name: 'os101/debian12', versions: [{version: '2026.1.0', providers: [{name: 'virtualbox', url: 'https://example.org/old.box'}]}]}))
    const noArch = await refusal(publishBox(planPublish({box: arm, name: 'os101/debian12', version: '2026.1.0', to: bare, cwd: dir, libvirt: false})))
    expect(noArch.code).toBe('VERSION_ARCH_UNKNOWN')
    expect(noArch.message).toContain('cannot list the arm64 box for virtualbox beside one without an architecture')
  })
})
