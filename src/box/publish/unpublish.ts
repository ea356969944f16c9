import {posix} from 'node:path'

import {ShienError} from '../../errors.js'
import type {PipelineEvent} from '../../pipeline/events.js'
import {need} from '../../pipeline/outputs.js'
import {runStages, type Stage} from '../../pipeline/runner.js'
import type {NewHostKey} from '../../transport/connect.js'
import {findVersion, formatCatalog, latestVersion, withoutVersion, type Catalog} from '../catalog.js'
import {baseInUse, baseUsersUnchecked, usersOfBase} from './base-users.js'
import {tempNameFor} from './install.js'
import {openDestination, readCatalog, release, takeLock} from './lock.js'
import {pathsFor, type VersionPaths} from './plan.js'
import {BASE_IMAGE_NAME} from '../../config/storage-layout.js'
import type {PublishTarget} from './target.js'
import type {UnpublishPlan} from './unpublish-plan.js'
import type {AskPassphrase} from '../../transport/ssh-auth.js'

export interface UnpublishOptions {
  signal?: AbortSignal
  onEvent?: (event: PipelineEvent) => void
  /** Asked for an unknown host key of an sftp:// destination. */
  confirmHostKey?: (key: NewHostKey) => Promise<boolean>
  agentSocket?: string
  /** Asks a key file's passphrase on a terminal. */
  askPassphrase?: AskPassphrase
}

export interface UnpublishResult {
  name: string
  /** The version as the catalog listed it. */
  version: string
  catalog: {path: string}
  /** False when the catalog no longer listed the version: only files an earlier run left were removed. */
  listed: boolean
  /** The files removed from the version's folder. */
  removed: string[]
  /** Every version the catalog lists now, oldest first (empty after the last one). */
  versions: string[]
  latest?: string
}

type UnpublishStageId = 'lock' | 'catalog' | 'remove'

interface UnpublishContext {
  plan: UnpublishPlan
  access: {confirmHostKey: (key: NewHostKey) => Promise<boolean>; agentSocket?: string; askPassphrase?: AskPassphrase}
  out: {
    /** The destination, locked; the catalog and the version's entry and files found there. */
    lock?: {target: PublishTarget; catalog?: Catalog; listed: boolean; version: string; layout: VersionPaths}
    catalog?: Catalog
    removed?: string[]
  }
  made: {target?: PublishTarget; locked?: boolean; catalogTmp?: string; unlockError?: unknown}
}

type UnpublishStage = Stage<UnpublishContext, UnpublishStageId>

// Files publish writes (of any architecture), removed in the reverse of the order it placed them.
const PUBLISHED_FILES = [/^libvirt(-[a-z0-9]+)?\.platform\.json$/, /^libvirt(-[a-z0-9]+)?\.manifest$/, BASE_IMAGE_NAME, /^libvirt(-[a-z0-9]+)?\.box$/, /^virtualbox(-[a-z0-9]+)?\.box$/]
const removalRank = (name: string) => {
  const rank = PUBLISHED_FILES.findIndex((pattern) => pattern.test(name))
  return rank < 0 ? PUBLISHED_FILES.length : rank
}

/**
 * Removes a published version: under the catalog's lock, refused while students' images are
 * overlays of its base (or cannot be checked); then the catalog without the version is renamed
 * over the old one, and only then are the version's files removed, so Vagrant never sees a
 * listed version whose box is gone. The last version leaves a catalog with no versions.
 */
export async function unpublishBox(plan: UnpublishPlan, opts: UnpublishOptions = {}): Promise<UnpublishResult> {
  const ctx: UnpublishContext = {
    plan,
    access: {confirmHostKey: opts.confirmHostKey ?? (async () => false), agentSocket: opts.agentSocket, askPassphrase: opts.askPassphrase},
    out: {},
    made: {},
  }
  await runStages([lockStage, catalogStage, removeStage], ctx, {signal: opts.signal ?? new AbortController().signal, onEvent: opts.onEvent})
  if (ctx.made.unlockError) throw ctx.made.unlockError
  const {catalog, listed, version, layout} = need(ctx.out, 'lock')
  const now = ctx.out.catalog ?? catalog
  return {
    name: plan.name,
    version,
    catalog: {path: layout.catalog},
    listed,
    removed: need(ctx.out, 'removed'),
    versions: now?.versions.map((v) => v.version) ?? [],
    latest: now && latestVersion(now),
  }
}

/** Opens the destination, takes the lock publish takes, finds the version and who uses its base. */
const lockStage: UnpublishStage = {
  id: 'lock',
  label: 'Reading the catalog',
  detail: (ctx) => ctx.plan.layout.catalog,
  async run(ctx, io) {
    const {plan} = ctx
    const target = (ctx.made.target = await openDestination(plan.destination, {...ctx.access, signal: io.signal}))
    if (!(await target.exists(posix.dirname(plan.layout.catalog)))) throw notPublished(plan, target)
    await takeLock(target, plan.layout.lock, 'unpublish')
    ctx.made.locked = true
    const catalog = await readCatalog(target, plan.layout.catalog, plan.name)
    const entry = catalog && findVersion(catalog, plan.version)
    // The folder is named as the catalog spells the version (Vagrant takes 2026.1 as 2026.1.0).
    const version = entry?.version ?? plan.version
    const layout = pathsFor(plan.destination.root, plan.name, version)
    // Unlisted but still there: files an interrupted unpublish left, removed on a second run.
    if (!entry && !(await target.exists(layout.versionDir))) throw catalog ? versionNotPublished(plan, catalog) : notPublished(plan, target)
    // Every architecture's base in the folder, listed or left by an interrupted run.
    const bases = ((await target.exists(layout.versionDir)) ? await listFolder(target, layout.versionDir) : [])?.filter((n) => BASE_IMAGE_NAME.test(n)).sort() ?? []
    for (const name of bases) {
      const owner = {...plan, version, base: posix.join(layout.versionDir, name)}
      const {uses, unchecked} = await usersOfBase(target, owner)
      if (uses.length > 0) throw baseInUse(owner, uses, 'removed')
      if (unchecked.length > 0) throw baseUsersUnchecked(owner, unchecked)
    }
    ctx.out.lock = {target, catalog, listed: entry !== undefined, version, layout}
  },
  async cleanup(ctx, outcome) {
    try {
      await release(ctx.made.target, ctx.made.locked ? ctx.plan.layout.lock : undefined)
    } catch (error) {
      // After a good unpublish this is the error to report: the next publish would find the lock.
      if (outcome === 'ok') ctx.made.unlockError = error
      throw error
    }
  },
}

/** Renames the catalog without the version over the old one, before any file goes. */
const catalogStage: UnpublishStage = {
  id: 'catalog',
  label: 'Writing the catalog',
  detail: (ctx) => ctx.plan.layout.catalog,
  async run(ctx) {
    const {target, catalog, listed, version, layout} = need(ctx.out, 'lock')
    if (!catalog || !listed) return
    const without = withoutVersion(catalog, version)
    const tmp = (ctx.made.catalogTmp = tempNameFor(layout.catalog))
    await target.putText(formatCatalog(without), tmp, 0o644)
    await target.rename(tmp, layout.catalog)
    ctx.made.catalogTmp = undefined
    ctx.out.catalog = without
  },
  async cleanup(ctx) {
    if (ctx.made.catalogTmp) await ctx.made.target?.remove(ctx.made.catalogTmp)
  },
}

/** Removes every file in the version's folder, then the folder, and the box's folder if empty. */
const removeStage: UnpublishStage = {
  id: 'remove',
  label: 'Removing the files',
  detail: (ctx) => ctx.out.lock?.layout.versionDir,
  async run(ctx, io) {
    const {target, layout, version} = need(ctx.out, 'lock')
    const dir = layout.versionDir
    const names = (await listFolder(target, dir)) ?? []
    const order = [...names].sort((a, b) => removalRank(a) - removalRank(b) || a.localeCompare(b))
    const removed: string[] = []
    for (const name of order) {
      const path = posix.join(dir, name)
      // A file that stays is found by listing the folder again below, over SFTP as here.
      await target.remove(path).catch(() => undefined)
      if (!(await target.exists(path))) {
        removed.push(path)
        io.emit({type: 'note', stage: 'remove', message: `removed ${path}`})
      }
    }
    await target.removeEmptyDir(dir)
    await target.removeEmptyDir(posix.dirname(dir))
    const left = await listFolder(target, dir)
    if (left !== undefined) throw incomplete(ctx.plan.name, version, dir, left, target)
    ctx.out.removed = removed
  },
}

async function listFolder(target: PublishTarget, dir: string): Promise<string[] | undefined> {
  return target.readDir(dir).catch((error: unknown) => {
    throw new ShienError(`Cannot list ${dir} on ${target.label}: ${(error as Error).message}.`, {code: 'UNPUBLISH_FAILED', exit: 'remote', cause: error})
  })
}

function notPublished(plan: UnpublishPlan, target: PublishTarget): ShienError {
  return new ShienError(`${plan.name} is not published in ${plan.destination.root} on ${target.label}: there is no ${plan.layout.catalog}.`, {
    code: 'BOX_NOT_PUBLISHED', exit: 'refused',
    suggestions: ['Check --name and --to: they are the ones given to shien box publish.'],
  })
}

function versionNotPublished(plan: UnpublishPlan, catalog: Catalog): ShienError {
  const listed = catalog.versions.map((v) => v.version)
  return new ShienError(`${plan.name} ${plan.version} is not published: ${plan.layout.catalog} lists ${listed.length > 0 ? listed.join(', ') : 'no versions'}.`, {
    code: 'VERSION_NOT_PUBLISHED', exit: 'refused',
    suggestions: listed.length > 0 ? [`Give one of the listed versions with --version.`] : [],
  })
}

function incomplete(name: string, version: string, dir: string, left: string[], target: PublishTarget): ShienError {
  return new ShienError(`${name} ${version} is no longer listed in the catalog, but ${dir} on ${target.label} still holds ${left.length > 0 ? left.join(', ') : 'the folder itself'}.`, {
    code: 'UNPUBLISH_INCOMPLETE', exit: 'remote',
    suggestions: ['Run the same command again once you may remove them (it removes what is left), or remove the folder by hand.'],
  })
}

/** What an unpublish did, for people. */
export function formatUnpublishResult(result: UnpublishResult): string {
  const lines = [result.listed
    ? `Unpublished ${result.name} ${result.version}; the catalog lists ${result.versions.length > 0 ? result.versions.join(', ') : 'no versions now'}.`
    : `${result.name} ${result.version} was no longer listed; removed the files left of it.`]
  for (const path of result.removed) lines.push(`  removed ${path}`)
  if (result.listed && result.versions.length === 0) lines.push(`${result.catalog.path} stays, with no versions: Vagrant reads it and finds nothing to add or update.`)
  return lines.join('\n')
}
