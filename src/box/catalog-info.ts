import {open} from 'node:fs/promises'

import {isUrl, loadCatalog} from './catalog-fetch.js'
import {compareVersions} from './catalog-version.js'
import {latestVersion} from './catalog.js'
import {renderTable} from '../text-table.js'

/** What `shien box inspect` reports for a catalog. */
export interface CatalogInfo {
  kind: 'catalog'
  url: string
  name: string
  description?: string
  latest?: string
  /** Oldest first, as Vagrant orders them. */
  versions: Array<{
    version: string
    providers: Array<{name: string; url: string; architecture?: string; defaultArchitecture?: boolean; checksumType?: string; checksum?: string}>
  }>
}

/**
 * Whether `spec` is a catalog rather than a box: every URL is (boxes are inspected from a
 * file), and a file is when it starts with a JSON object, as a tar or gzip file never does.
 */
export async function isCatalogInput(spec: string): Promise<boolean> {
  if (isUrl(spec)) return true
  let handle
  try {
    handle = await open(spec, 'r')
    const head = Buffer.alloc(64)
    const {bytesRead} = await handle.read(head, 0, head.length, 0)
    return /^\s*\{/.test(head.subarray(0, bytesRead).toString('latin1'))
  } catch {
    // Unreadable: let the box reader say why, as it always has.
    return false
  } finally {
    await handle?.close()
  }
}

/** Reads and checks a catalog (path or URL) without downloading any box. */
export async function inspectCatalog(spec: string, signal?: AbortSignal): Promise<CatalogInfo> {
  const {url, catalog} = await loadCatalog(spec, {signal})
  return {
    kind: 'catalog',
    url,
    name: catalog.name,
    description: catalog.description,
    latest: latestVersion(catalog),
    versions: [...catalog.versions].sort((a, b) => compareVersions(a.version, b.version)).map((v) => ({
      version: v.version,
      providers: v.providers.map((p) => ({name: p.name, url: p.url, architecture: p.architecture, defaultArchitecture: p.default_architecture, checksumType: p.checksum_type, checksum: p.checksum})),
    })),
  }
}

/** Human summary: the catalog, then one line per version and provider. */
export function formatCatalogInfo(info: CatalogInfo): string {
  const lines = [
    `Catalog   ${info.url}`,
    `Box       ${info.name}${info.description ? ` (${info.description})` : ''}`,
    `Latest    ${info.latest ?? '(no versions)'}`,
    '',
  ]
  const rows = info.versions.flatMap((v) => v.providers.map((p) => [
    v.version, p.name, `${p.architecture ?? '-'}${p.defaultArchitecture ? ' (default)' : ''}`, p.checksumType ? `${p.checksumType}:${p.checksum?.slice(0, 12)}…` : 'none', p.url,
  ]))
  const head = ['VERSION', 'PROVIDER', 'ARCH', 'CHECKSUM', 'URL']
  lines.push(renderTable(head, rows))
  lines.push('', `Add it with: vagrant box add ${info.url}`)
  return lines.join('\n')
}
