import {badInput} from '../errors.js'
import {architectureNamed} from './architecture.js'
import {loadCatalog} from './catalog-fetch.js'
import {compareVersions} from './catalog-version.js'
import type {CatalogProvider} from './catalog.js'
import {scanBox, type BoxScan} from './verify-box.js'

/** The verdict on one box a catalog lists. */
export interface BoxVerdict {
  version: string
  provider: string
  architecture?: string
  url: string
  /** Bytes read: the whole file, or less when no checksum needed it all. */
  bytes: number
  checksum: 'ok' | 'mismatch' | 'none'
  problems: string[]
}

export interface VerifyResult {
  catalog: string
  name: string
  versions: string[]
  boxes: BoxVerdict[]
  /** Distinct files read; a URL listed twice is read once. */
  downloads: number
  ok: boolean
}

export interface VerifyOptions {
  version?: string
  provider?: string
  signal?: AbortSignal
  onBox?: (verdict: BoxVerdict) => void
}

/**
 * Reads a catalog (path or URL) and checks every box it lists, or those of one version or
 * provider: each file is read once, hashed while its metadata.json and disk headers are
 * checked; files without a checksum are read only as far as those.
 */
export async function verifyCatalog(spec: string, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const {url, catalog} = await loadCatalog(spec, {signal: opts.signal})
  const entries = catalog.versions
    .filter((v) => opts.version === undefined || compareVersions(v.version, opts.version) === 0)
    .flatMap((v) => v.providers.filter((p) => opts.provider === undefined || p.name === opts.provider).map((p) => ({version: v.version, provider: p})))
  if (entries.length === 0) {
    throw badInput('VERIFY_NOTHING', `${url} lists no box${opts.version ? ` for version ${opts.version}` : ''}${opts.provider ? ` for provider ${opts.provider}` : ''}.`)
  }
  const boxes: BoxVerdict[] = []
  const urls = [...new Set(entries.map((e) => e.provider.url))]
  // One download at a time: boxes are large and share the same link.
  for (const boxUrl of urls) {
    const listed = entries.filter((e) => e.provider.url === boxUrl)
    const types = listed.filter((e) => e.provider.checksum).map((e) => e.provider.checksum_type!.toLowerCase())
    const scan = await scanBox(boxUrl, [...new Set(types)], opts.signal)
    for (const entry of listed) {
      const verdict = judge(entry.version, entry.provider, scan)
      opts.onBox?.(verdict)
      boxes.push(verdict)
    }
  }
  return {catalog: url, name: catalog.name, versions: catalog.versions.map((v) => v.version), boxes, downloads: urls.length, ok: boxes.every((b) => b.problems.length === 0)}
}

function judge(version: string, provider: CatalogProvider, scan: BoxScan): BoxVerdict {
  const problems: string[] = []
  let checksum: BoxVerdict['checksum'] = 'none'
  if (scan.error) problems.push(scan.error)
  else {
    if (provider.checksum) {
      const actual = scan.digests[provider.checksum_type!.toLowerCase()]
      checksum = actual === provider.checksum.toLowerCase() ? 'ok' : 'mismatch'
      if (checksum === 'mismatch') problems.push(`${provider.checksum_type} is ${actual}, the catalog says ${provider.checksum}: Vagrant will refuse this box`)
    }
    problems.push(...metadataProblems(provider.name, scan, provider.architecture))
  }
  return {version, provider: provider.name, architecture: provider.architecture, url: provider.url, bytes: scan.bytes, checksum, problems}
}

/**
 * What Vagrant and the provider would trip over in the box's metadata.json and disks, and an
 * architecture the catalog lists that the box's metadata.json contradicts.
 */
export function metadataProblems(provider: string, scan: BoxScan, architecture?: string): string[] {
  const metadata = scan.metadata
  if (metadata === undefined) return ['the box has no metadata.json']
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) return ['metadata.json is not a JSON object']
  const m = metadata as Record<string, unknown>
  if (m.provider !== provider) return [`metadata.json says the provider is ${JSON.stringify(m.provider ?? null)}, the catalog lists it as ${provider}`]
  const declared = typeof m.architecture === 'string' ? architectureNamed(m.architecture) : undefined
  if (declared && architecture && architecture !== 'unknown' && declared !== architectureNamed(architecture)) {
    return [`metadata.json says the architecture is ${JSON.stringify(m.architecture)}, the catalog lists it as ${architecture}: Vagrant would pick it for the wrong machines`]
  }
  if (provider === 'virtualbox') return virtualboxProblems(scan)
  if (provider === 'libvirt') return libvirtProblems(m, scan)
  return []
}

function virtualboxProblems(scan: BoxScan): string[] {
  const problems: string[] = []
  if (!scan.ovf) problems.push('the VirtualBox box has no .ovf descriptor')
  if (scan.vmdks.length === 0) problems.push('the VirtualBox box has no .vmdk disk')
  for (const vmdk of scan.vmdks) if (vmdk.problem) problems.push(vmdk.problem)
  return problems
}

function libvirtProblems(m: Record<string, unknown>, scan: BoxScan): string[] {
  const problems: string[] = []
  if (m.format !== 'qcow2') problems.push(`metadata.json has format ${JSON.stringify(m.format ?? null)}; vagrant-libvirt needs "qcow2"`)
  const size = m.virtual_size
  if (!Number.isInteger(size) || (size as number) <= 0) problems.push(`metadata.json has virtual_size ${JSON.stringify(size ?? null)}; it must be a whole number of GiB`)
  const qcow2 = scan.qcow2
  if (!qcow2) return [...problems, 'the libvirt box has no box.img']
  if (!qcow2.ok) return [...problems, 'box.img is not a qcow2 image']
  if (qcow2.backing) problems.push('box.img names a backing file; a base box must stand alone')
  if (qcow2.externalData) problems.push('box.img keeps its data in an external file; a base box must stand alone')
  if (Number.isInteger(size) && qcow2.virtualBytes > (size as number) * 2 ** 30) {
    problems.push(`box.img holds ${qcow2.virtualBytes} bytes, more than virtual_size ${String(size)} GiB`)
  }
  return problems
}
