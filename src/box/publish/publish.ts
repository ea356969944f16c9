import {posix} from 'node:path'

import {ShienError} from '../../errors.js'
import type {PipelineEvent} from '../../pipeline/events.js'
import {need} from '../../pipeline/outputs.js'
import {runStages} from '../../pipeline/runner.js'
import type {NewHostKey} from '../../transport/connect.js'
import {findVersion, latestVersion, type Catalog} from '../catalog.js'
import {preparedFiles, type PublishContext, type PublishStage} from './context.js'
import {baseInUse, usersOfBase} from './base-users.js'
import {catalogStage, copyStage} from './install.js'
import {openDestination, readCatalog, release, takeLock} from './lock.js'
import type {PublishPlan} from './plan.js'
import {checksumStage, convertStage, inspectStage} from './prepare.js'
import type {PublishTarget} from './target.js'
import type {AskPassphrase} from '../../transport/ssh-auth.js'

export interface PublishOptions {
  signal?: AbortSignal
  onEvent?: (event: PipelineEvent) => void
  /** Asked for an unknown host key of an sftp:// destination. */
  confirmHostKey?: (key: NewHostKey) => Promise<boolean>
  agentSocket?: string
  /** Asks a key file's passphrase on a terminal. */
  askPassphrase?: AskPassphrase
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
    askPassphrase: opts.askPassphrase,
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
    const target = (ctx.made.target = ctx.target ?? (await openDestination(plan.destination, {confirmHostKey: ctx.confirmHostKey, agentSocket: ctx.agentSocket, askPassphrase: ctx.askPassphrase, signal: io.signal})))
    await target.mkdirs(posix.dirname(plan.layout.catalog))
    await takeLock(target, plan.layout.lock, 'publish')
    ctx.made.locked = true
    const existing = await readCatalog(target, plan.layout.catalog, plan.name)
    const replaced = checkConflict(existing, plan)
    // The base a replaced version had: students' overlays of it would change under them.
    const {uses, unchecked} = replaced && plan.libvirt ? await usersOfBase(target, plan) : {uses: [], unchecked: []}
    if (uses.length > 0) throw baseInUse(plan, uses, 'replaced')
    ctx.out.lock = {target, existing, replaced, uncheckedImages: unchecked}
  },
  async cleanup(ctx, outcome) {
    const {target, locked} = ctx.made
    try {
      await release(target, locked ? ctx.plan.layout.lock : undefined)
    } catch (error) {
      // After a good publish this is the error to report: the next publish would find the lock.
      if (outcome === 'ok') ctx.made.unlockError = error
      throw error
    }
  },
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
