import {randomBytes} from 'node:crypto'
import {posix} from 'node:path'

import {need} from '../../pipeline/outputs.js'
import type {StageIO} from '../../pipeline/runner.js'
import {findVersion, formatCatalog, withVersion, type Catalog, type CatalogProvider} from '../catalog.js'
import {type LocalFile, type Placement, preparedFiles, type PreparedFiles, type PublishStage} from './context.js'
import type {ArchitectureFiles, PublishPlan} from './plan.js'
import type {PublishTarget} from './target.js'
import {versionWith} from './version-entry.js'

// The version's files are copied under temporary names, then renamed into place, boxes first
// and the catalog last: the catalog never lists a box that is not complete.

/** Copies the version's files to the destination under temporary names. */
export const copyStage: PublishStage = {
  id: 'copy',
  label: 'Copying',
  detail: (ctx) => `${filesFor(need(ctx.out, 'inspect').files, preparedFiles(ctx.out)).length} files to ${need(ctx.out, 'lock').target.label}`,
  async run(ctx, io) {
    const {target} = need(ctx.out, 'lock')
    const placements = filesFor(need(ctx.out, 'inspect').files, preparedFiles(ctx.out)).map((p) => ({...p, tmp: tempNameFor(p.dest)}))
    for (const p of placements) ctx.made.pending.add(p.tmp)
    await target.mkdirs(ctx.plan.layout.versionDir)
    await copyAll(target, placements, io)
    ctx.out.copy = {placements}
  },
  async cleanup(ctx, outcome) {
    const target = ctx.made.target
    if (outcome === 'ok' || !target) return
    for (const tmp of ctx.made.pending) await target.remove(tmp)
    // A new version's folder is not listed anywhere: take it away again (a replaced one stays).
    if (!ctx.out.lock?.replaced) {
      await target.removeEmptyDir(ctx.plan.layout.versionDir)
      await target.removeEmptyDir(posix.dirname(ctx.plan.layout.versionDir))
    }
  },
}

/** Writes the catalog, then renames the files into place and the catalog over the old one. */
export const catalogStage: PublishStage = {
  id: 'catalog',
  label: 'Writing the catalog',
  detail: (ctx) => ctx.plan.layout.catalog,
  async run(ctx, io) {
    const {plan, made} = ctx
    const {target, existing} = need(ctx.out, 'lock')
    const {architecture, files} = need(ctx.out, 'inspect')
    const catalog = catalogFor(plan, existing, providersFor(files, architecture, preparedFiles(ctx.out)))
    const catalogTmp = tempNameFor(plan.layout.catalog)
    made.pending.add(catalogTmp)
    await target.putText(formatCatalog(catalog), catalogTmp, 0o644)
    io.signal.throwIfAborted()
    for (const p of need(ctx.out, 'copy').placements) {
      await target.rename(p.tmp, p.dest)
      made.pending.delete(p.tmp)
      made.placed.push(p.dest)
    }
    await target.rename(catalogTmp, plan.layout.catalog)
    made.pending.delete(catalogTmp)
    ctx.out.catalog = catalog
  },
  async cleanup(ctx, outcome) {
    const target = ctx.made.target
    if (outcome === 'ok' || !target) return
    // A new version's files are not listed anywhere yet: take them away again.
    if (!ctx.out.lock?.replaced) for (const path of ctx.made.placed) await target.remove(path)
  },
}

/** The catalog as it will be: the existing one (or a new one) with this publish's boxes in the version. */
function catalogFor(plan: PublishPlan, existing: Catalog | undefined, entries: CatalogProvider[]): Catalog {
  const old = existing && findVersion(existing, plan.version)
  const catalog = withVersion(existing ?? {name: plan.name, description: plan.description ?? `${plan.name} base box`, versions: []}, versionWith(old, plan.version, entries))
  if (plan.description !== undefined) catalog.description = plan.description
  return catalog
}

function filesFor(paths: ArchitectureFiles, files: PreparedFiles): Array<Omit<Placement, 'tmp'>> {
  const list: Array<[LocalFile | undefined, string, number]> = [
    [files.virtualbox, paths.virtualbox, 0o644],
    [files.libvirt, paths.libvirt, 0o644],
    // The base of students' overlays must never change under them.
    [files.base, paths.base, 0o444],
    // After the base: copied later, so the blade can tell a manifest older than its base.
    [files.manifest, paths.manifest, 0o444],
    [files.platform, paths.platform, 0o444],
  ]
  return list.filter((item): item is [LocalFile, string, number] => item[0] !== undefined)
    .map(([file, dest, mode]) => ({file, dest, mode}))
}

async function copyAll(target: PublishTarget, placements: Placement[], io: StageIO): Promise<void> {
  const total = placements.reduce((sum, p) => sum + p.file.bytes, 0)
  let before = 0
  for (const p of placements) {
    await target.putFile(p.file.path, p.tmp, {
      mode: p.mode,
      signal: io.signal,
      onProgress: (bytes) => io.emit({type: 'progress', stage: 'copy', bytes: before + bytes, total}),
    })
    before += p.file.bytes
  }
}

/** A hidden name beside `path` for the copy in progress. */
export function tempNameFor(path: string): string {
  return posix.join(posix.dirname(path), `.${posix.basename(path)}.tmp-${randomBytes(4).toString('hex')}`)
}

/** The catalog entries of the boxes this publish writes, all of its architecture; defaults are decided by {@link versionWith}. */
export function providersFor(paths: ArchitectureFiles, architecture: string, files: PreparedFiles): CatalogProvider[] {
  const entry = (name: 'virtualbox' | 'libvirt', url: string, sha256: string): CatalogProvider => ({
    name, url, checksum_type: 'sha256', checksum: sha256, architecture, default_architecture: true,
  })
  const providers = [entry('virtualbox', paths.urls.virtualbox, files.virtualbox.sha256)]
  if (files.libvirt) providers.push(entry('libvirt', paths.urls.libvirt, files.libvirt.sha256))
  return providers
}
