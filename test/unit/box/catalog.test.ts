import {execFileSync} from 'node:child_process'
import {readdirSync, readFileSync} from 'node:fs'
import {dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

import {describe, expect, it} from 'vitest'

import {compareVersions, versionProblem} from '../../../src/box/catalog-version.js'
import {findVersion, formatCatalog, latestVersion, parseCatalog, withVersion} from '../../../src/box/catalog.js'
import {ShienError} from '../../../src/errors.js'

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
const realDir = resolve(repoRoot, 'test/fixtures/real')
const realCatalogs = readdirSync(realDir).filter((f) => f.startsWith('catalog-'))

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (error) {
    return error instanceof ShienError ? error.code : `not a ShienError: ${String(error)}`
  }
  return undefined
}

const catalogText = (versions: unknown[]) => JSON.stringify({name: 'os101/debian12', versions})
const provider = (name = 'virtualbox') => ({name, url: 'https://blade.example/x.box', checksum_type: 'sha256', checksum: 'a'.repeat(64)})

describe('catalog versions, as Vagrant (RubyGems) reads them', () => {
  it('accepts what Gem::Version accepts and refuses the rest', () => {
    for (const ok of ['2026.1.0', '7.0.3.I7.3', '1.2.0-rc1', '1', '2017.09.30', '0.1.a']) expect(versionProblem(ok), ok).toBeUndefined()
    for (const bad of ['', 'v1.0', '1.0 beta', '1..0', '.1', '1.0/../x', '1.0_1', '-1', '1.0.']) expect(versionProblem(bad), bad).toBeDefined()
  })

  it('orders versions exactly as Ruby\'s Gem::Version does', () => {
    const versions = ['1.0', '1.0.0.1', '1.0.a', '1.0.b1', '1.0-rc1', '2026.9.0', '2026.10.0', '7.0.3.I7.3', '7.0.3', '7.0.3.1', '12.1.2', '8.0.0', '1.0.0']
    // Equal versions ("1.0" and "1.0.0") are ordered by their text on both sides.
    const ruby = execFileSync('ruby', ['-e', 'puts ARGV.sort_by { |v| [Gem::Version.new(v), v] }', ...versions], {encoding: 'utf8'}).trim().split('\n')
    const ours = [...versions].sort((a, b) => compareVersions(a, b) || (a < b ? -1 : a > b ? 1 : 0))
    expect(ours).toEqual(ruby)
    expect(compareVersions('1.0', '1.0.0')).toBe(0)
    expect(compareVersions('1.0.a', '1.0')).toBeLessThan(0)
    expect(compareVersions('2026.10.0', '2026.9.0')).toBeGreaterThan(0)
  })
})

describe('parseCatalog', () => {
  it.each(realCatalogs)('reads the real catalog %s', (file) => {
    const text = readFileSync(join(realDir, file), 'utf8')
    const raw = JSON.parse(text)
    const catalog = parseCatalog(text, file)
    expect(catalog.name).toBe(raw.name)
    expect(catalog.versions.map((v) => v.version)).toEqual(raw.versions.map((v: {version: string}) => v.version))
    expect(catalog.versions.every((v) => v.providers.every((p) => p.name === 'virtualbox'))).toBe(true)
  })

  it('finds the newest of six real versions as Vagrant does', () => {
    const catalog = parseCatalog(readFileSync(join(realDir, 'catalog-virtualbox-6versions-sha1-caio2k-centos67.json'), 'utf8'), 'x')
    expect(latestVersion(catalog)).toBe('26.1.1')
    expect(findVersion(catalog, '8.0.1')?.providers[0].checksum).toBe('3ec3ceffc1153fa34bd2f1ad630174bdcbf3a098')
  })

  it('refuses what is not JSON, or not a catalog', () => {
    expect(codeOf(() => parseCatalog('<html>not found</html>', 'x'))).toBe('CATALOG_NOT_JSON')
    expect(codeOf(() => parseCatalog('[]', 'x'))).toBe('CATALOG_INVALID')
    expect(codeOf(() => parseCatalog('{"versions": []}', 'x'))).toBe('CATALOG_INVALID')
    expect(codeOf(() => parseCatalog('{"name": "a/b", "versions": {}}', 'x'))).toBe('CATALOG_INVALID')
  })

  it('refuses an unknown provider, naming it', () => {
    const text = catalogText([{version: '1.0.0', providers: [provider('virtualbx')]}])
    expect(codeOf(() => parseCatalog(text, 'x'))).toBe('CATALOG_UNKNOWN_PROVIDER')
    expect(() => parseCatalog(text, 'cat.json')).toThrow(/cat\.json lists an unknown provider "virtualbx" for version 1\.0\.0/)
  })

  it('refuses versions Vagrant cannot read or would merge, and malformed checksums', () => {
    expect(codeOf(() => parseCatalog(catalogText([{version: 'latest', providers: []}]), 'x'))).toBe('CATALOG_BAD_VERSION')
    expect(() => parseCatalog(catalogText([{version: '1.0', providers: []}, {version: '1.0.0', providers: []}]), 'x')).toThrow(/listed twice/)
    expect(() => parseCatalog(catalogText([{version: '1.0', providers: [{...provider(), checksum: 'abc'}]}]), 'x')).toThrow(/not 64 hex digits/)
    expect(() => parseCatalog(catalogText([{version: '1.0', providers: [{...provider(), checksum_type: 'crc32'}]}]), 'x')).toThrow(/checksum_type "crc32"/)
    expect(() => parseCatalog(catalogText([{version: '1.0', providers: [provider(), provider()]}]), 'x')).toThrow(/twice/)
  })
})

describe('withVersion', () => {
  it('adds a version between others, keeping them and fields shien does not know', () => {
    const catalog = parseCatalog(JSON.stringify({
      name: 'os101/debian12', description: 'Course box', x_course: 'os101',
      versions: [{version: '2026.2.0', providers: [provider()], x_note: 'kept'}, {version: '2026.0.1', providers: [provider()]}],
    }), 'x')
    const next = withVersion(catalog, {version: '2026.1.0', providers: [provider('libvirt')]})
    expect(next.versions.map((v) => v.version)).toEqual(['2026.0.1', '2026.1.0', '2026.2.0'])
    expect(next.x_course).toBe('os101')
    expect(next.versions[2].x_note).toBe('kept')
    expect(catalog.versions).toHaveLength(2)
    const replaced = withVersion(next, {version: '2026.1.0', providers: [provider('virtualbox')]})
    expect(replaced.versions.map((v) => v.providers[0].name)).toEqual(['virtualbox', 'virtualbox', 'virtualbox'])
    expect(JSON.parse(formatCatalog(replaced))).toEqual(replaced)
    expect(formatCatalog(replaced).endsWith('}\n')).toBe(true)
  })
})
