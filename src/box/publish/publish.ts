import {hostname, userInfo} from 'node:os'
import {posix} from 'node:path'

import {badInput, ShienError} from '../../errors.js'
import type {PipelineEvent} from '../../pipeline/events.js'
import {need} from '../../pipeline/outputs.js'
import {runStages} from '../../pipeline/runner.js'
import type {NewHostKey} from '../../transport/connect.js'
import {CATALOG_SIZE_LIMIT, findVersion, latestVersion, parseCatalog, type Catalog} from '../catalog.js'
import {preparedFiles, type PublishContext, type PublishStage} from './context.js'
import {baseInUse, usersOfBase} from './base-users.js'
import {catalogStage, copyStage} from './install.js'
import {LocalTarget} from './local-target.js'
import type {PublishPlan} from './plan.js'
import {checksumStage, convertStage, inspectStage} from './prepare.js'
import {SftpTarget} from './sftp-target.js'
import type {PublishTarget} from './target.js'

export interface PublishOptions {
  signal?: AbortSignal
  onEvent?: (event: PipelineEvent) => void
  /** Asked for an unknown host key of an sftp:// destination. */
  confirmHostKey?: (key: NewHostKey) => Promise<boolean>
  agentSocket?: string
  /** The destination, already open (a fake in tests); otherwise the plan's, opened by the lock stage. */
  target?: PublishTarget
}

/** One published box file, as the catalog lists it. */
export interface PublishedFile {
  provider: 'virtualbox' | 'libvirt'
  path: string
  url: string
  bytes: number
  sha256: string
}

export interface PublishResult {
  name: string
  version: string
  /** Where the catalog is on the destination, and the URL students add. */
  catalog: {path: string; url: string}
  files: PublishedFile[]
  /** The read-only qcow2 the blades base students' images on, when converted. */
  base?: {path: string; virtualSizeGiB: number}
  /** Every version the catalog lists now, oldest first. */
  versions: string[]
  latest: string
  /** Whether an existing version was replaced (--force). */
  replaced: boolean
  warnings: string[]
}

/**
 * Publishes a VirtualBox box (and its libvirt conversion) as a version of a catalog. The
 * destination is locked, the catalog read and checked, and the version's files put in place
 * before the catalog is renamed over the old one; any failure before that leaves the
 * destination as it was.
 */
export async function publishBox(plan: PublishPlan, opts: PublishOptions = {}): Promise<PublishResult> {
  const ctx: PublishContext = {
    plan,
    confirmHostKey: opts.confirmHostKey ?? (async () => false),
    agentSocket: opts.agentSocket,
    target: opts.target,
    out: {},
    made: {pending: new Set(), placed: []},
  }
  const stages = [inspectStage, lockStage, checksumStage, ...(plan.libvirt ? [convertStage] : []), copyStage, catalogStage]
  await runStages(stages, ctx, {signal: opts.signal ?? new AbortController().signal, onEvent: opts.onEvent})
  if (ctx.made.unlockError) throw ctx.made.unlockError
  return resultOf(ctx)
}

/** Opens the destination, takes its lock, and reads and checks the catalog there. */
const lockStage: PublishStage = {
  id: 'lock',
  label: 'Reading the catalog',
  detail: (ctx) => ctx.plan.layout.catalog,
  async run(ctx, io) {
    const {plan} = ctx
    const target = (ctx.made.target = ctx.target ?? (await openTarget(ctx, io.signal)))
    await target.mkdirs(posix.dirname(plan.layout.catalog))
    await takeLock(target, plan.layout.lock)
    ctx.made.locked = true
    const existing = await readCatalog(target, plan)
    const replaced = checkConflict(existing, plan)
    // The base a replaced version had: students' overlays of it would change under them.
    const {uses, unchecked} = replaced && plan.libvirt ? await usersOfBase(target, plan) : {uses: [], unchecked: []}
    if (uses.length > 0) throw baseInUse(plan, uses)
    ctx.out.lock = {target, existing, replaced, uncheckedImages: unchecked}
  },
  async cleanup(ctx, outcome) {
    const {target, locked} = ctx.made
    try {
      try {
        if (locked) await target?.remove(ctx.plan.layout.lock)
      } finally {
        await target?.close()
      }
    } catch (error) {
      // After a good publish this is the error to report: the next publish would find the lock.
      if (outcome === 'ok') ctx.made.unlockError = error
      throw error
    }
  },
}

async function openTarget(ctx: PublishContext, signal: AbortSignal): Promise<PublishTarget> {
  const {destination} = ctx.plan
  if (destination.kind === 'local') return new LocalTarget()
  return SftpTarget.open({
    target: destination.target,
    knownHostsPath: destination.knownHostsPath,
    confirmNewHostKey: ctx.confirmHostKey,
    agentSocket: ctx.agentSocket,
    signal,
  })
}

/** One publisher per catalog at a time, or the second one's version would be lost. */
async function takeLock(target: PublishTarget, lock: string): Promise<void> {
  const owner = JSON.stringify({user: userInfo().username, host: hostname(), pid: process.pid, since: new Date().toISOString()})
  if (!(await target.createExclusive(lock, owner + '\n'))) {
    const holder = await target.readText(lock, 4096).catch(() => undefined)
    throw new ShienError(`Another publish of this catalog holds ${lock} on ${target.label}${holder ? ` (${holder.trim()})` : ''}.`, {
      code: 'PUBLISH_LOCKED', exit: 'refused',
      suggestions: ['Wait for it to finish. If no publish is running (it was killed), remove the lock file and try again.'],
    })
  }
}

async function readCatalog(target: PublishTarget, plan: PublishPlan): Promise<Catalog | undefined> {
  const {catalog: path} = plan.layout
  const text = await target.readText(path, CATALOG_SIZE_LIMIT)
  if (text === undefined) return undefined
  if (text.length > CATALOG_SIZE_LIMIT) throw badInput('CATALOG_TOO_LARGE', `${path} is larger than Vagrant reads (${CATALOG_SIZE_LIMIT} bytes).`)
  const catalog = parseCatalog(text, path)
  if (catalog.name !== plan.name) {
    throw badInput('CATALOG_NAME_MISMATCH', `${path} is the catalog of "${catalog.name}", not "${plan.name}".`, [
      `Publish with --name ${catalog.name}, or choose another name.`,
    ])
  }
  return catalog
}

/** True when --force replaces a version that exists; an error without --force. */
function checkConflict(existing: Catalog | undefined, plan: PublishPlan): boolean {
  const same = existing && findVersion(existing, plan.version)
  if (!existing || !same) return false
  if (plan.force) return true
  throw new ShienError(`${plan.name} ${same.version} is already published (${plan.layout.catalog}).`, {
    code: 'VERSION_EXISTS', exit: 'refused',
    suggestions: [`Publish a newer version (the latest is ${latestVersion(existing)}),`, 'or replace it with --force before students have downloaded it.'],
  })
}

function resultOf(ctx: PublishContext): PublishResult {
  const {plan, out} = ctx
  const {layout} = plan
  const catalog = need(out, 'catalog')
  const {replaced, uncheckedImages} = need(out, 'lock')
  const files = preparedFiles(out)
  const published: PublishedFile[] = [{provider: 'virtualbox', path: layout.virtualbox, url: layout.urls.virtualbox, bytes: files.virtualbox.bytes, sha256: files.virtualbox.sha256}]
  if (files.libvirt) published.push({provider: 'libvirt', path: layout.libvirt, url: layout.urls.libvirt, bytes: files.libvirt.bytes, sha256: files.libvirt.sha256})
  const warnings = [...files.warnings]
  if (replaced && files.base) warnings.push(`${layout.base} was replaced: images based on the old one must be made again.`)
  if (uncheckedImages?.length) warnings.push(`Could not check whether these images were overlays of the replaced base (no read access): ${uncheckedImages.join(', ')}.`)
  return {
    name: plan.name,
    version: plan.version,
    catalog: {path: layout.catalog, url: layout.urls.catalog},
    files: published,
    base: files.base && files.libvirt ? {path: layout.base, virtualSizeGiB: files.libvirt.metadata.virtual_size} : undefined,
    versions: catalog.versions.map((v) => v.version),
    latest: latestVersion(catalog) ?? plan.version,
    replaced,
    warnings,
  }
}

/** What a publish did, for people: the files, their URLs and checksums, and the add command. */
export function formatPublishResult(result: PublishResult): string {
  const lines = [`Published ${result.name} ${result.version}${result.replaced ? ' (replaced)' : ''}; the catalog lists ${result.versions.join(', ')}.`]
  for (const file of result.files) lines.push(`  ${file.provider.padEnd(10)} ${file.url}  sha256 ${file.sha256}`)
  if (result.base) lines.push(`  blade base ${result.base.path} (${result.base.virtualSizeGiB} GiB, read-only)`)
  for (const warning of result.warnings) lines.push(`Warning: ${warning}`)
  lines.push(`Students add it with: vagrant box add ${result.catalog.url}`)
  return lines.join('\n')
}
