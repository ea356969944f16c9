import {randomBytes} from 'node:crypto'
import {posix} from 'node:path'

import {findVersion, formatCatalog, withVersion, type Catalog, type CatalogProvider, type CatalogVersion} from '../catalog.js'
import type {PublishEvent} from './events.js'
import type {PublishPlan} from './plan.js'
import type {LocalFile, PreparedFiles} from './prepare.js'
import type {PublishTarget} from './target.js'

interface Placement {
  file: LocalFile
  dest: string
  mode: number
  tmp: string
}

/**
 * Copies the version's files under temporary names, then renames them into place, boxes
 * first and the catalog last: the catalog never lists a box that is not complete. Returns
 * the catalog as written.
 */
export async function installFiles(
  target: PublishTarget,
  plan: PublishPlan,
  existing: Catalog | undefined,
  files: PreparedFiles,
  opts: {signal?: AbortSignal; emit: (event: PublishEvent) => void},
): Promise<Catalog> {
  const {layout} = plan
  const placements = placementsFor(plan, files)
  const catalog = withVersion(existing ?? {name: plan.name, description: plan.description ?? `${plan.name} base box`, versions: []}, versionEntry(plan, existing, files))
  if (plan.description !== undefined) catalog.description = plan.description
  const catalogTmp = tempNameFor(layout.catalog)
  const pending = new Set([...placements.map((p) => p.tmp), catalogTmp])
  const placed: string[] = []
  try {
    await target.mkdirs(layout.versionDir)
    await copyAll(target, placements, opts)
    opts.emit({type: 'step:start', step: 'catalog', detail: layout.catalog})
    await target.putText(formatCatalog(catalog), catalogTmp, 0o644)
    opts.signal?.throwIfAborted()
    for (const p of placements) {
      await target.rename(p.tmp, p.dest)
      pending.delete(p.tmp)
      placed.push(p.dest)
    }
    await target.rename(catalogTmp, layout.catalog)
    pending.delete(catalogTmp)
    return catalog
  } catch (error) {
    for (const tmp of pending) await target.remove(tmp)
    // A new version's files are not listed anywhere yet: take them away again.
    if (!(existing && findVersion(existing, plan.version))) {
      for (const path of placed) await target.remove(path)
      await target.removeEmptyDir(layout.versionDir)
      await target.removeEmptyDir(posix.dirname(layout.versionDir))
    }
    throw error
  }
}

function placementsFor(plan: PublishPlan, files: PreparedFiles): Placement[] {
  const {layout} = plan
  const list: Array<[LocalFile | undefined, string, number]> = [
    [files.virtualbox, layout.virtualbox, 0o644],
    [files.libvirt, layout.libvirt, 0o644],
    // The base of students' overlays must never change under them.
    [files.base, layout.base, 0o444],
  ]
  return list.filter((item): item is [LocalFile, string, number] => item[0] !== undefined)
    .map(([file, dest, mode]) => ({file, dest, mode, tmp: tempNameFor(dest)}))
}

async function copyAll(target: PublishTarget, placements: Placement[], opts: {signal?: AbortSignal; emit: (event: PublishEvent) => void}): Promise<void> {
  const total = placements.reduce((sum, p) => sum + p.file.bytes, 0)
  let before = 0
  opts.emit({type: 'step:start', step: 'copy', detail: `${placements.length} files to ${target.label}`})
  for (const p of placements) {
    await target.putFile(p.file.path, p.tmp, {
      mode: p.mode,
      signal: opts.signal,
      onProgress: (bytes) => opts.emit({type: 'progress', step: 'copy', done: before + bytes, total}),
    })
    before += p.file.bytes
  }
}

/** The version's entry: this publish's providers, plus any other provider a --force run keeps. */
function versionEntry(plan: PublishPlan, existing: Catalog | undefined, files: PreparedFiles): CatalogVersion {
  const providers = providersFor(plan, files)
  const old = existing && findVersion(existing, plan.version)
  const kept = (old?.providers ?? []).filter((p) => !providers.some((n) => n.name === p.name))
  return {...old, version: plan.version, providers: [...providers, ...kept]}
}

/** A hidden name beside `path` for the copy in progress. */
function tempNameFor(path: string): string {
  return posix.join(posix.dirname(path), `.${posix.basename(path)}.tmp-${randomBytes(4).toString('hex')}`)
}

/** The catalog entries of the files published for this version. */
function providersFor(plan: PublishPlan, files: PreparedFiles): CatalogProvider[] {
  const entry = (name: 'virtualbox' | 'libvirt', url: string, sha256: string): CatalogProvider => ({
    name, url, checksum_type: 'sha256', checksum: sha256, architecture: plan.architecture, default_architecture: true,
  })
  const providers = [entry('virtualbox', plan.layout.urls.virtualbox, files.virtualbox.sha256)]
  if (files.libvirt) providers.push(entry('libvirt', plan.layout.urls.libvirt, files.libvirt.sha256))
  return providers
}
