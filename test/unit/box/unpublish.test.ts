// shien box unpublish against real folders: versions published by publishBox (small boxes with
// a real libvirt conversion), students' overlays made with qemu-img beside a `boxes` folder.
import {createHash} from 'node:crypto'
import {existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {parseCatalog} from '../../../src/box/catalog.js'
import {LocalTarget} from '../../../src/box/publish/local-target.js'
import {planPublish, type PublishInput} from '../../../src/box/publish/plan.js'
import {publishBox} from '../../../src/box/publish/publish.js'
import {unpublishBox} from '../../../src/box/publish/unpublish.js'
import {planUnpublish} from '../../../src/box/publish/unpublish-plan.js'
import {ShienError} from '../../../src/errors.js'
import {backingNameOf} from '../../../src/qemu-img/qcow2-backing.js'
import type {PipelineEvent} from '../../../src/pipeline/events.js'
import {makeBox, tempDir} from '../../support/make-box.js'
import {refusal} from '../../support/refusal.js'

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

const publish = (to: string, version: string, over: Partial<PublishInput> = {}) =>
  publishBox(planPublish({box, name: 'os101/debian12', version, to, cwd: dir, ...over}))
const unpublish = (to: string, version: string, opts: Parameters<typeof unpublishBox>[1] = {}) =>
  unpublishBox(planUnpublish({name: 'os101/debian12', version, to, cwd: dir}), opts)

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex')

/** Every folder and file under `root` with the files' hashes: what a refusal must leave as it was. */
function tree(root: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const entry of readdirSync(root, {recursive: true, withFileTypes: true})) {
    const path = join(entry.parentPath, entry.name)
    out[path.slice(root.length + 1)] = entry.isDirectory() ? 'dir' : sha256(path)
  }
  return out
}

const catalogOf = (to: string) => parseCatalog(readFileSync(join(to, 'os101/debian12.json'), 'utf8'), 'catalog')

/** The rejection, checked to be a refusal by a rule (exit 6) with this code. */
async function refused(promise: Promise<unknown>, code: string): Promise<ShienError> {
  const error = await promise.then(() => undefined, (e: unknown) => e)
  expect(error).toBeInstanceOf(ShienError)
  expect((error as ShienError).code).toBe(code)
  expect((error as ShienError).exitCode).toBe(6)
  return error as ShienError
}

describe('shien box unpublish from a folder', () => {
  it('takes the version out of the catalog, then removes its files; the other versions stay as they were', async () => {
    const to = destination()
    await publish(to, '2026.1.0', {description: 'OS course'})
    await publish(to, '2026.2.0')
    await publish(to, '2026.3.0', {libvirt: false})
    const before = catalogOf(to)
    const kept = Object.entries(tree(to)).filter(([path]) => !path.includes('2026.1.0') && path !== 'os101/debian12.json')
    const events: PipelineEvent[] = []
    const result = await unpublish(to, '2026.1.0', {onEvent: (e) => events.push(e)})
    const versionDir = join(to, 'os101/debian12/2026.1.0')
    expect(result).toEqual({
      name: 'os101/debian12', version: '2026.1.0', catalog: {path: join(to, 'os101/debian12.json')}, listed: true,
      removed: ['libvirt.platform.json', 'libvirt.manifest', 'libvirt.qcow2', 'libvirt.box', 'virtualbox.box'].map((f) => join(versionDir, f)),
      versions: ['2026.2.0', '2026.3.0'], latest: '2026.3.0',
    })
    // The catalog is the old one without that entry: description and the other entries unchanged.
    expect(catalogOf(to)).toEqual({...before, versions: before.versions.slice(1)})
    expect(existsSync(versionDir)).toBe(false)
    expect(Object.entries(tree(to)).filter(([path]) => path !== 'os101/debian12.json')).toEqual(kept)
    // Neither the lock nor a temporary catalog is left.
    expect(readdirSync(join(to, 'os101')).sort()).toEqual(['debian12', 'debian12.json'])
    expect(events.filter((e) => e.type === 'stage:start').map((e) => e.stage)).toEqual(['lock', 'catalog', 'remove'])
  })

  it('leaves a catalog with no versions after the last one, which the next publish adds to', async () => {
    const to = destination()
    await publish(to, '2026.1.0', {description: 'OS course'})
    const result = await unpublish(to, '2026.1')
    // Vagrant takes 2026.1 as 2026.1.0: the folder is named as the catalog lists it.
    expect(result).toMatchObject({version: '2026.1.0', versions: [], latest: undefined})
    expect(catalogOf(to)).toEqual({name: 'os101/debian12', description: 'OS course', versions: []})
    expect(readdirSync(join(to, 'os101'))).toEqual(['debian12.json'])
    const again = await publish(to, '2026.2.0', {libvirt: false})
    expect(again.versions).toEqual(['2026.2.0'])
    expect(catalogOf(to).description).toBe('OS course')
  })

  it('refuses a version the catalog does not list, and a box with no catalog, changing nothing', async () => {
    const to = destination()
    await publish(to, '2026.1.0', {libvirt: false})
    const before = tree(to)
    const version = await refused(unpublish(to, '2026.9.0'), 'VERSION_NOT_PUBLISHED')
    expect(version.message).toBe(`os101/debian12 2026.9.0 is not published: ${join(to, 'os101/debian12.json')} lists 2026.1.0.`)
    const name = await refused(unpublishBox(planUnpublish({name: 'os101/ubuntu24', version: '2026.1.0', to, cwd: dir})), 'BOX_NOT_PUBLISHED')
    expect(name.message).toContain(`there is no ${join(to, 'os101/ubuntu24.json')}`)
    await refused(unpublishBox(planUnpublish({name: 'os999/debian12', version: '2026.1.0', to, cwd: dir})), 'BOX_NOT_PUBLISHED')
    expect(tree(to)).toEqual(before)
  })

  it('refuses bad input before reading anything, every problem at once', () => {
    const error = refusal(() => planUnpublish({name: 'Debian 12', version: 'latest', to: 'https://blade.example/boxes', cwd: dir}))
    expect(error.code).toBe('UNPUBLISH_BAD_INPUT')
    for (const part of ['"Debian 12" is not a box name', '"latest"', 'not to https://blade.example/boxes']) expect(error.message).toContain(part)
  })

  it('waits for no one: a catalog locked by a publish is refused and left as it was', async () => {
    const to = destination()
    await publish(to, '2026.1.0', {libvirt: false})
    writeFileSync(join(to, 'os101/.debian12.json.lock'), '{"command":"publish","user":"teacher1"}\n')
    const before = tree(to)
    const error = await refused(unpublish(to, '2026.1.0'), 'PUBLISH_LOCKED')
    expect(error.message).toContain('teacher1')
    expect(tree(to)).toEqual(before)
  })

  it('holds the lock a publish of the same box takes, naming itself, until it is done', async () => {
    const to = destination()
    await publish(to, '2026.1.0', {libvirt: false})
    const lock = join(to, 'os101/.debian12.json.lock')
    const seen: string[] = []
    await unpublish(to, '2026.1.0', {
      onEvent: (e) => {
        if (e.type === 'stage:start' && e.stage !== 'lock') seen.push(`${e.stage}: ${readFileSync(lock, 'utf8')}`)
      },
    })
    expect(seen).toEqual([expect.stringMatching(/^catalog: \{"command":"unpublish","user":/), expect.stringMatching(/^remove: \{"command":"unpublish"/)])
    expect(existsSync(lock)).toBe(false)
  })

  it('when interrupted after the catalog, leaves the files unlisted; the same command again removes them', async () => {
    const to = destination()
    await publish(to, '2026.1.0')
    await publish(to, '2026.2.0', {libvirt: false})
    const abort = new AbortController()
    const run = unpublish(to, '2026.1.0', {
      signal: abort.signal,
      onEvent: (e) => {
        if (e.type === 'stage:end' && e.stage === 'catalog') abort.abort(new Error('interrupted'))
      },
    })
    await expect(run).rejects.toThrow('interrupted')
    expect(catalogOf(to).versions.map((v) => v.version)).toEqual(['2026.2.0'])
    expect(readdirSync(join(to, 'os101/debian12/2026.1.0')).length).toBe(5)
    expect(existsSync(join(to, 'os101/.debian12.json.lock'))).toBe(false)
    const again = await unpublish(to, '2026.1.0')
    expect(again).toMatchObject({listed: false, versions: ['2026.2.0']})
    expect(again.removed).toHaveLength(5)
    expect(readdirSync(join(to, 'os101/debian12'))).toEqual(['2026.2.0'])
    await refused(unpublish(to, '2026.1.0'), 'VERSION_NOT_PUBLISHED')
  })

  it('removes what an interrupted publish left in the version folder too', async () => {
    const to = destination()
    await publish(to, '2026.1.0', {libvirt: false})
    writeFileSync(join(to, 'os101/debian12/2026.1.0/.libvirt.box.tmp-0badc0de'), 'half a copy')
    const result = await unpublish(to, '2026.1.0')
    expect(result.removed.map((p) => p.slice(to.length + 1))).toEqual(['os101/debian12/2026.1.0/virtualbox.box', 'os101/debian12/2026.1.0/.libvirt.box.tmp-0badc0de'])
    expect(existsSync(join(to, 'os101/debian12'))).toBe(false)
  })
})

describe('shien box unpublish of a base students use', () => {
  /** `<storage>/boxes` with the version published, as a blade's storage root. */
  async function bladeStorage(): Promise<{storage: string; to: string; base: string}> {
    const storage = destination()
    const to = join(storage, 'boxes')
    mkdirSync(to)
    await publish(to, '2026.1.0')
    await publish(to, '2026.2.0')
    return {storage, to, base: join(to, 'os101/debian12/2026.1.0/libvirt.qcow2')}
  }
  const images = (storage: string, account: string) => {
    const d = join(storage, 'users', account, 'images')
    mkdirSync(d, {recursive: true})
    return d
  }
  const overlay = (base: string, path: string) => execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', base, path])

  it('refuses while students\' images are overlays of the version\'s base, naming account and slot; nothing is removed', async () => {
    const {storage, to, base} = await bladeStorage()
    await overlay(base, join(images(storage, 'e195701'), '01.qcow2'))
    await overlay(base, join(images(storage, 'e195702'), '.02.new.qcow2'))
    // An overlay of the other version, and a standalone image: not uses of this base.
    await overlay(join(to, 'os101/debian12/2026.2.0/libvirt.qcow2'), join(images(storage, 'e195703'), '01.qcow2'))
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', join(images(storage, 'e195704'), '02.qcow2'), '1M'])
    const before = tree(storage)
    const error = await refused(unpublish(to, '2026.1.0'), 'BASE_IN_USE')
    expect(error.message).toBe(`os101/debian12 2026.1.0 cannot be removed: students' images are overlays of its base ${base} (e195701 01, e195702 02.new).`)
    expect(tree(storage)).toEqual(before)
    expect(existsSync(join(to, 'os101/.debian12.json.lock'))).toBe(false)
    // The other version's users do not hold this one back once its own are gone.
    rmSync(join(storage, 'users/e195701'), {recursive: true})
    rmSync(join(storage, 'users/e195702'), {recursive: true})
    expect((await unpublish(to, '2026.1.0')).versions).toEqual(['2026.2.0'])
    await refused(unpublish(to, '2026.2.0'), 'BASE_IN_USE')
  })

  it('refuses while an account\'s images cannot be listed to tell', async () => {
    const {storage, to} = await bladeStorage()
    // Root reads every folder, so here the images folders are files (test/integration has the
    // real case: an instructor who may not read the students' folders).
    mkdirSync(join(storage, 'users/e195705/images'), {recursive: true})
    writeFileSync(join(storage, 'users/e195706'), 'not a folder')
    mkdirSync(join(storage, 'users/e195707'))
    writeFileSync(join(storage, 'users/e195707/images'), 'not a folder')
    const before = tree(storage)
    const error = await refused(unpublish(to, '2026.1.0'), 'BASE_USERS_UNCHECKED')
    expect(error.message).toMatch(/cannot tell whether these students' images are overlays of its base .*2026\.1\.0\/libvirt\.qcow2 \(no read access\): e195706, e195707\.$/)
    expect(error.suggestions.join(' ')).toContain('as root on the blade')
    expect(tree(storage)).toEqual(before)
  })

  it('checks the base of every architecture in the version, and then removes all their files', async () => {
    const {storage, to} = await bladeStorage()
    const ovf = readFileSync(join(import.meta.dirname, '../../fixtures/vbox71/box-arm64.ovf'), 'utf8')
    const arm = await makeBox(dir, 'unpublish-arm64.box', {ovf, metadata: {provider: 'virtualbox', architecture: 'arm64'}})
    await publish(to, '2026.1.0', {box: arm})
    const versionDir = join(to, 'os101/debian12/2026.1.0')
    await overlay(join(versionDir, 'libvirt-arm64.qcow2'), join(images(storage, 'e195701'), '01.qcow2'))
    const before = tree(storage)
    const error = await refused(unpublish(to, '2026.1.0'), 'BASE_IN_USE')
    expect(error.message).toContain(`overlays of its base ${join(versionDir, 'libvirt-arm64.qcow2')} (e195701 01)`)
    expect(tree(storage)).toEqual(before)
    rmSync(join(storage, 'users/e195701'), {recursive: true})
    const result = await unpublish(to, '2026.1.0')
    expect(result.removed.map((path) => path.slice(versionDir.length + 1))).toEqual([
      'libvirt-arm64.platform.json', 'libvirt.platform.json', 'libvirt-arm64.manifest', 'libvirt.manifest', 'libvirt-arm64.qcow2', 'libvirt.qcow2',
      'libvirt-arm64.box', 'libvirt.box', 'virtualbox-arm64.box', 'virtualbox.box',
    ])
    expect(existsSync(versionDir)).toBe(false)
  })

  it('counts an images folder swapped for a link to another student\'s, or to anywhere, for no one', async () => {
    const {storage, to, base} = await bladeStorage()
    await overlay(base, join(images(storage, 'e195701'), '01.qcow2'))
    const elsewhere = join(storage, 'elsewhere')
    mkdirSync(elsewhere)
    await overlay(base, join(elsewhere, '03.qcow2'))
    mkdirSync(join(storage, 'users/e195708'))
    symlinkSync(join(storage, 'users/e195701/images'), join(storage, 'users/e195708/images'))
    mkdirSync(join(storage, 'users/e195709'))
    symlinkSync(elsewhere, join(storage, 'users/e195709/images'))
    const error = await refused(unpublish(to, '2026.1.0'), 'BASE_IN_USE')
    expect(error.message).toMatch(/\(e195701 01\)\.$/)
    rmSync(join(storage, 'users/e195701'), {recursive: true})
    expect((await unpublish(to, '2026.1.0')).versions).toEqual(['2026.2.0'])
  })

  it('reads the images of the folder it opened, even when the student swaps it for a link while it is read', async () => {
    const {storage, base} = await bladeStorage()
    const own = images(storage, 'e195710')
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', join(own, '01.qcow2'), '1M'])
    const victim = images(storage, 'e195711')
    await overlay(base, join(victim, '01.qcow2'))
    // The swap happens between the listing and the reads: when the names are matched.
    let swapped = false
    const match = new (class extends RegExp {
      override test(name: string): boolean {
        if (!swapped) {
          renameSync(own, `${own}.moved`)
          symlinkSync(victim, own)
          swapped = true
        }
        return super.test(name)
      }
    })('^01\\.qcow2$')
    const heads = await new LocalTarget().readHeads(own, join(storage, 'users'), match, 65_536)
    expect(swapped).toBe(true)
    expect(heads?.map((h) => h.name)).toEqual(['01.qcow2'])
    // The student's own standalone image, not the victim's overlay the path now leads to.
    expect(backingNameOf(heads![0].head!)).toBeUndefined()
    expect(backingNameOf(readFileSync(join(own, '01.qcow2')).subarray(0, 65_536))).toBe(base)
  })
})
