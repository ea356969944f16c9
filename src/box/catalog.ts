import {badInput, ShienError} from '../errors.js'
import {compareVersions, versionProblem} from './catalog-version.js'

/**
 * A versioned Vagrant box catalog, the JSON that `vagrant box add URL` and
 * `vagrant box outdated` read. Fields shien does not know are kept as they are.
 */
export interface Catalog {
  name: string
  description?: string
  versions: CatalogVersion[]
  [field: string]: unknown
}

export interface CatalogVersion {
  version: string
  description?: string
  providers: CatalogProvider[]
  [field: string]: unknown
}

export interface CatalogProvider {
  /** Vagrant provider, e.g. `virtualbox` or `libvirt`. */
  name: string
  /** Absolute URL of the .box (http, https or file). */
  url: string
  checksum_type?: string
  checksum?: string
  /** Vagrant 2.4 picks the box for the host's architecture; older Vagrant ignores it. */
  architecture?: string
  default_architecture?: boolean
  [field: string]: unknown
}

/** Providers Vagrant ships or that common plugins add; anything else is most likely a typo. */
export const KNOWN_PROVIDERS = [
  'virtualbox', 'libvirt', 'hyperv', 'docker', 'vmware_desktop', 'vmware_fusion', 'vmware_workstation',
  'parallels', 'qemu', 'lxc', 'aws',
] as const

/** Architectures Vagrant 2.4 knows (`Vagrant::Util::Platform.architecture`), plus its "unknown". */
export const ARCHITECTURES = ['amd64', 'i386', 'arm64', 'arm', 'ppc64le', 'ppc64', 's390x', 'mips', 'mips64', 'unknown'] as const

/** Checksum types Vagrant verifies, with the length of their hex digest. */
export const CHECKSUM_LENGTHS: Record<string, number> = {md5: 32, sha1: 40, sha256: 64, sha384: 96, sha512: 128}

/** Vagrant will not read a catalog larger than this (BoxAdd::METADATA_SIZE_LIMIT). */
export const CATALOG_SIZE_LIMIT = 20 * 1024 * 1024

const FIX = ['Fix the catalog by hand, or publish to a new catalog name.']

/** Parses and checks a catalog; `source` names it in messages. Throws a `badInput` ShienError. */
export function parseCatalog(text: string, source: string): Catalog {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    throw new ShienError(`${source} is not a Vagrant box catalog: it is not JSON (${(error as Error).message}).`, {
      code: 'CATALOG_NOT_JSON', exit: 'badInput', cause: error,
      suggestions: ['A catalog is a JSON file such as {"name": "os101/debian12", "versions": [...]}.', ...FIX],
    })
  }
  const catalog = expectObject(value, source, 'the catalog')
  expectString(catalog.name, source, '"name"')
  if (catalog.description !== undefined) expectString(catalog.description, source, '"description"')
  if (!Array.isArray(catalog.versions)) throw invalid(source, '"versions" is not a list')
  const seen: string[] = []
  catalog.versions.forEach((raw, i) => {
    const version = checkVersion(raw, source, i)
    const same = seen.find((v) => compareVersions(v, version.version) === 0)
    if (same !== undefined) throw invalid(source, `version ${version.version} is listed twice (Vagrant takes ${same} and ${version.version} as the same version)`)
    seen.push(version.version)
  })
  return catalog as Catalog
}

function checkVersion(raw: unknown, source: string, index: number): CatalogVersion {
  const version = expectObject(raw, source, `versions[${index}]`)
  const name = expectString(version.version, source, `versions[${index}].version`)
  const problem = versionProblem(name)
  if (problem) {
    throw badInput('CATALOG_BAD_VERSION', `${source} lists version "${name}", which Vagrant cannot read: ${problem}.`, FIX)
  }
  if (!Array.isArray(version.providers)) throw invalid(source, `version ${name} has no "providers" list`)
  const keys = new Set<string>()
  for (const provider of version.providers) {
    const p = checkProvider(provider, source, name)
    const key = `${p.name}/${p.architecture ?? ''}`
    if (keys.has(key)) throw invalid(source, `version ${name} lists provider ${p.name}${p.architecture ? ` (${p.architecture})` : ''} twice`)
    keys.add(key)
  }
  return version as CatalogVersion
}

function checkProvider(raw: unknown, source: string, version: string): CatalogProvider {
  const where = `version ${version}`
  const provider = expectObject(raw, source, `a provider of ${where}`)
  const name = expectString(provider.name, source, `a provider name in ${where}`)
  if (!(KNOWN_PROVIDERS as readonly string[]).includes(name)) {
    throw badInput('CATALOG_UNKNOWN_PROVIDER', `${source} lists an unknown provider "${name}" for ${where}.`, [
      `Known providers: ${KNOWN_PROVIDERS.join(', ')}.`, ...FIX,
    ])
  }
  expectString(provider.url, source, `the url of ${name} in ${where}`)
  if (provider.checksum_type !== undefined || provider.checksum !== undefined) {
    checkChecksum(provider.checksum_type, provider.checksum, source, `${name} in ${where}`)
  }
  if (provider.architecture !== undefined && !(ARCHITECTURES as readonly string[]).includes(String(provider.architecture))) {
    throw invalid(source, `${name} in ${where} has an unknown architecture "${String(provider.architecture)}"`)
  }
  return provider as CatalogProvider
}

function checkChecksum(type: unknown, checksum: unknown, source: string, where: string): void {
  const length = typeof type === 'string' ? CHECKSUM_LENGTHS[type.toLowerCase()] : undefined
  if (length === undefined) {
    throw invalid(source, `${where} has checksum_type ${JSON.stringify(type)}; Vagrant checks ${Object.keys(CHECKSUM_LENGTHS).join(', ')}`)
  }
  if (typeof checksum !== 'string' || !new RegExp(`^[0-9a-fA-F]{${length}}$`).test(checksum)) {
    throw invalid(source, `${where} has a checksum that is not ${length} hex digits for ${String(type)}`)
  }
}

function expectObject(value: unknown, source: string, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(source, `${what} is not a JSON object`)
  return value as Record<string, unknown>
}

function expectString(value: unknown, source: string, what: string): string {
  if (typeof value !== 'string' || value.length === 0) throw invalid(source, `${what} is missing or not a string`)
  return value
}

function invalid(source: string, why: string): ShienError {
  return badInput('CATALOG_INVALID', `${source} is not a valid Vagrant box catalog: ${why}.`, FIX)
}

/** The version entry Vagrant would take as `version`, if the catalog has one. */
export function findVersion(catalog: Catalog, version: string): CatalogVersion | undefined {
  return catalog.versions.find((v) => compareVersions(v.version, version) === 0)
}

/** The catalog with `entry` added, or put in place of the same version; versions oldest first. */
export function withVersion(catalog: Catalog, entry: CatalogVersion): Catalog {
  const others = catalog.versions.filter((v) => compareVersions(v.version, entry.version) !== 0)
  return {...catalog, versions: [...others, entry].sort((a, b) => compareVersions(a.version, b.version))}
}

/** The catalog without the entry Vagrant would take as `version`; the other fields as they were. */
export function withoutVersion(catalog: Catalog, version: string): Catalog {
  return {...catalog, versions: catalog.versions.filter((v) => compareVersions(v.version, version) !== 0)}
}

/** The newest version, as Vagrant sorts them. */
export function latestVersion(catalog: Catalog): string | undefined {
  return catalog.versions.map((v) => v.version).sort(compareVersions).at(-1)
}

/** The catalog as it is written: two-space JSON and a final newline. */
export function formatCatalog(catalog: Catalog): string {
  return JSON.stringify(catalog, null, 2) + '\n'
}
