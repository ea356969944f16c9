import {Console} from 'node:console'
import {copyFileSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {dirname, join, resolve} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'

import {captureOutput} from '@oclif/test'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import BoxInspect from '../../../commands/box/inspect.js'
import BoxVerify from '../../../commands/box/verify.js'
import type {CatalogInfo} from '../../../src/box/catalog-info.js'
import {planPublish} from '../../../src/box/publish/plan.js'
import {publishBox} from '../../../src/box/publish/publish.js'
import {verifyCatalog} from '../../../src/box/verify.js'
import {makeBox, tempDir} from '../../support/make-box.js'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
const realDir = resolve(root, 'test/fixtures/real')

let dir: string
let cleanup: () => Promise<void>
let to: string
let catalogPath: string
beforeAll(async () => {
  ;({dir, cleanup} = await tempDir())
  const box = await makeBox(dir, 'course.box')
  to = join(dir, 'boxes')
  for (const version of ['2026.1.0', '2026.2.0']) {
    await publishBox(planPublish({box, name: 'os101/debian12', version, to, cwd: dir, description: 'OS course'}))
  }
  catalogPath = join(to, 'os101/debian12.json')
})
afterAll(() => cleanup())

/** Runs a command with its output captured (oclif prints with console.log, which vitest intercepts). */
async function run<T = unknown>(command: {run(argv: string[], root: string): Promise<unknown>}, argv: string[]) {
  const vitestConsole = globalThis.console
  globalThis.console = new Console({stdout: process.stdout, stderr: process.stderr})
  try {
    return await captureOutput<T>(() => command.run(argv, root) as Promise<T>)
  } finally {
    globalThis.console = vitestConsole
  }
}

/** A copy of the published tree with one change, so each test starts from a good catalog. */
function variant(name: string, change: (catalog: any, versionDir: string) => void): string {
  const copy = join(dir, name)
  const versionDir = join(copy, 'os101/debian12/2026.2.0')
  mkdirSync(versionDir, {recursive: true})
  for (const file of ['virtualbox.box', 'libvirt.box']) copyFileSync(join(to, 'os101/debian12/2026.2.0', file), join(versionDir, file))
  const catalog = JSON.parse(readFileSync(catalogPath, 'utf8'))
  catalog.versions = catalog.versions.filter((v: {version: string}) => v.version === '2026.2.0')
  for (const p of catalog.versions[0].providers) p.url = pathToFileURL(join(versionDir, `${p.name}.box`)).href
  change(catalog, versionDir)
  writeFileSync(join(copy, 'catalog.json'), JSON.stringify(catalog))
  return join(copy, 'catalog.json')
}

describe('shien box verify', () => {
  it('checks every box of every version: checksum, metadata and disk', async () => {
    const result = await verifyCatalog(catalogPath)
    expect(result.ok).toBe(true)
    expect(result.boxes.map((b) => `${b.version} ${b.provider} ${b.checksum}`)).toEqual([
      '2026.1.0 virtualbox ok', '2026.1.0 libvirt ok', '2026.2.0 virtualbox ok', '2026.2.0 libvirt ok',
    ])
    expect(result.downloads).toBe(4)
    const {stdout, error} = await run(BoxVerify, [catalogPath, '--version', '2026.2.0', '--provider', 'libvirt'])
    expect(error).toBeUndefined()
    expect(stdout).toContain('os101/debian12: 1 box in 2 versions verified.')
  })

  it('fails on a checksum mismatch, naming the box', async () => {
    const path = variant('tampered', (_catalog, versionDir) => {
      const file = join(versionDir, 'virtualbox.box')
      const bytes = readFileSync(file)
      // The first letter of the Vagrantfile, right after its 512-byte tar header: the archive
      // stays valid, only the checksum can tell.
      expect(bytes.subarray(512, 519).toString()).toBe('Vagrant')
      bytes[512] = 'v'.charCodeAt(0)
      writeFileSync(file, bytes)
    })
    const result = await verifyCatalog(path)
    expect(result.ok).toBe(false)
    expect(result.boxes.find((b) => b.provider === 'virtualbox')).toMatchObject({checksum: 'mismatch'})
    expect(result.boxes.find((b) => b.provider === 'libvirt')).toMatchObject({checksum: 'ok', problems: []})
    const {stderr, error} = await run(BoxVerify, [path])
    expect(stderr).toMatch(/Error \(CHECKSUM_MISMATCH\): 1 of 2 boxes .* failed:\n {2}2026\.2\.0 virtualbox .*sha256 is [0-9a-f]{64}, the catalog says/)
    expect(error?.message).toBe('EEXIT: 3')
  })

  it('fails when a box\'s metadata.json names another provider than the catalog', async () => {
    const path = variant('swapped', (catalog) => {
      const [vb, lv] = catalog.versions[0].providers
      ;[vb.url, lv.url, vb.checksum, lv.checksum] = [lv.url, vb.url, lv.checksum, vb.checksum]
    })
    const result = await verifyCatalog(path)
    expect(result.boxes.map((b) => b.problems)).toEqual([
      ['metadata.json says the provider is "libvirt", the catalog lists it as virtualbox'],
      ['metadata.json says the provider is "virtualbox", the catalog lists it as libvirt'],
    ])
  })

  it('fails when the catalog lists another architecture than the box\'s metadata.json declares', async () => {
    const ovf = readFileSync(join(root, 'test/fixtures/vbox71/box-arm64.ovf'), 'utf8')
    const arm = await makeBox(dir, 'arm64.box', {ovf, metadata: {provider: 'virtualbox', architecture: 'arm64'}})
    const armTo = join(dir, 'arm-boxes')
    await publishBox(planPublish({box: arm, name: 'os101/debian12', version: '2026.1.0', to: armTo, cwd: dir, libvirt: false}))
    const path = join(armTo, 'os101/debian12.json')
    expect((await verifyCatalog(path)).ok).toBe(true)
    const catalog = JSON.parse(readFileSync(path, 'utf8'))
    catalog.versions[0].providers[0].architecture = 'amd64'
    writeFileSync(path, JSON.stringify(catalog))
    const result = await verifyCatalog(path)
    expect(result.boxes.map((b) => b.problems)).toEqual([
      ['metadata.json says the architecture is "arm64", the catalog lists it as amd64: Vagrant would pick it for the wrong machines'],
    ])
  })

  it('reads a box without a checksum only as far as its metadata and disk header', async () => {
    const path = variant('no-checksum', (catalog) => {
      for (const p of catalog.versions[0].providers) delete p.checksum_type, delete p.checksum
    })
    const result = await verifyCatalog(path, {provider: 'libvirt'})
    expect(result.boxes).toMatchObject([{provider: 'libvirt', checksum: 'none', problems: []}])
    const size = readFileSync(join(dir, 'no-checksum/os101/debian12/2026.2.0/libvirt.box')).length
    expect(result.boxes[0].bytes).toBeLessThan(size)
  })

  it('refuses a catalog that is not JSON', async () => {
    const path = join(dir, 'broken.json')
    writeFileSync(path, '{"name": "os101/debian12", "versions": [')
    const {stderr, error} = await run(BoxVerify, [path])
    expect(stderr).toContain('Error (CATALOG_NOT_JSON)')
    expect(error?.message).toBe('EEXIT: 3')
  })
})

describe('shien box inspect, given a catalog', () => {
  it('lists versions and providers, oldest first, without downloading boxes', async () => {
    const {stdout, result, error} = await run<CatalogInfo>(BoxInspect, [catalogPath])
    expect(error).toBeUndefined()
    expect(result).toMatchObject({kind: 'catalog', name: 'os101/debian12', description: 'OS course', latest: '2026.2.0'})
    expect(result?.versions.map((v) => v.version)).toEqual(['2026.1.0', '2026.2.0'])
    expect(stdout).toContain('Box       os101/debian12 (OS course)')
    expect(stdout).toMatch(/2026\.2\.0 +libvirt +amd64 \(default\) +sha256:[0-9a-f]{12}…/)
    expect(result?.versions[1].providers[0]).toMatchObject({architecture: 'amd64', defaultArchitecture: true})
    expect(stdout).toContain(`Add it with: vagrant box add ${pathToFileURL(catalogPath).href}`)
  })

  it('reads a real catalog with a non-semver version and a file:// URL', async () => {
    const {result} = await run<CatalogInfo>(BoxInspect, [join(realDir, 'catalog-virtualbox-1version-fileurl-nxosv.json'), '--json'])
    expect(result).toMatchObject({name: 'cisco/n9kv', latest: '7.0.3.I7.3', versions: [{providers: [{name: 'virtualbox', url: 'file:////Users/Marcus/Downloads/N9K/nxosv-final.7.0.3.I7.3.box'}]}]})
  })

  it('refuses a catalog with an unknown provider', async () => {
    const path = join(dir, 'unknown.json')
    writeFileSync(path, JSON.stringify({name: 'a/b', versions: [{version: '1.0.0', providers: [{name: 'virtualbox-7', url: 'https://x/b.box'}]}]}))
    const {stderr} = await run(BoxInspect, [path])
    expect(stderr).toContain('Error (CATALOG_UNKNOWN_PROVIDER)')
    expect(stderr).toContain('unknown provider "virtualbox-7"')
  })
})
