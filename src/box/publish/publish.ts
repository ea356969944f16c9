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
import type {ArchitectureFiles, PublishPlan} from './plan.js'
import {checksumStage, convertStage, inspectStage} from './prepare.js'
import type {PublishTarget} from './target.js'
import {checkPairs, olderVagrantGets, type PairCheck} from './version-entry.js'
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
  architecture: string
  path: string
  url: string
  bytes: number
  sha256: string
}

export interface PublishResult {
  name: string
  version: string
  /** The architecture the catalog lists this publish's boxes as. */
  architecture: string
  /** Where the catalog is on the destination, and the URL students add. */
  catalog: {path: string; url: string}
  files: PublishedFile[]
  /** The read-only qcow2 the blades base students' images on, when converted. */
  base?: {path: string; virtualSizeGiB: number}
  /** Every version the catalog lists now, oldest first. */
  versions: string[]
  latest: string
  /** Whether this architecture's boxes of an existing version were replaced (--force). */
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
    const {architecture, files} = need(ctx.out, 'inspect')
    const old = existing && findVersion(existing, plan.version)
    const pairs = checkPairs(old, architecture, plan.libvirt ? ['virtualbox', 'libvirt'] : ['virtualbox'], plan.force, {name: plan.name, catalog: plan.layout.catalog})
    await checkFilesFree(target, files, pairs, plan)
    const replaced = pairs.replaced.length > 0
    // The base a replaced pair had: students' overlays of it would change under them.
    const {uses, unchecked} = pairs.replaced.includes('libvirt') ? await usersOfBase(target, {...plan, base: files.base}) : {uses: [], unchecked: []}
    if (uses.length > 0) throw baseInUse({...plan, base: files.base}, uses, 'replaced')
    ctx.out.lock = {target, existing, pairs, replaced, uncheckedImages: unchecked}
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

/**
 * The files of a pair the version does not list yet must not be there: a version published
 * before versions held several architectures named its only box `virtualbox.box` whatever its
 * architecture, and a publish of another architecture must not write over it.
 */
async function checkFilesFree(target: PublishTarget, files: ArchitectureFiles, pairs: PairCheck, plan: PublishPlan): Promise<void> {
  const paths = pairs.added.flatMap((provider) => (provider === 'libvirt' ? [files.libvirt, files.base, files.manifest, files.platform] : [files.virtualbox]))
  const taken: string[] = []
  for (const path of paths) if (await target.exists(path)) taken.push(path)
  if (taken.length === 0) return
  throw new ShienError(`${plan.name} ${plan.version}'s folder already has ${taken.join(', ')}, which the catalog does not list as this box's (${plan.layout.catalog}).`, {
    code: 'VERSION_FILES_TAKEN', exit: 'refused',
    suggestions: ['Publish the box as a new version (a version published before versions held several architectures names its box virtualbox.box whatever its architecture).'],
  })
}

function resultOf(ctx: PublishContext): PublishResult {
  const {plan, out} = ctx
  const {layout} = plan
  const catalog = need(out, 'catalog')
  const {architecture, files: paths} = need(out, 'inspect')
  const {replaced, pairs, uncheckedImages} = need(out, 'lock')
  const files = preparedFiles(out)
  const file = (provider: 'virtualbox' | 'libvirt', local: {bytes: number; sha256: string}): PublishedFile => ({provider, architecture, path: paths[provider], url: paths.urls[provider], bytes: local.bytes, sha256: local.sha256})
  const published = [file('virtualbox', files.virtualbox), ...(files.libvirt ? [file('libvirt', files.libvirt)] : [])]
  const warnings = [...files.warnings]
  if (pairs.replaced.includes('libvirt') && files.base) warnings.push(`${paths.base} was replaced: images based on the old one must be made again.`)
  if (uncheckedImages?.length) warnings.push(`Could not check whether these images were overlays of the replaced base (no read access): ${uncheckedImages.join(', ')}.`)
  const entry = findVersion(catalog, plan.version)
  const olderGet = entry ? published.map((f) => ({provider: f.provider, gets: olderVagrantGets(entry, f.provider)})).filter((o) => o.gets !== architecture) : []
  for (const {provider, gets} of olderGet) {
    warnings.push(`Vagrant 2.3 and older ignore architectures and get the ${gets} box for ${provider} of ${plan.version} (the version's default); Vagrant 2.4 picks this ${architecture} box on ${architecture} hosts.`)
  }
  return {
    name: plan.name,
    version: plan.version,
    architecture,
    catalog: {path: layout.catalog, url: layout.urls.catalog},
    files: published,
    base: files.base && files.libvirt ? {path: paths.base, virtualSizeGiB: files.libvirt.metadata.virtual_size} : undefined,
    versions: catalog.versions.map((v) => v.version),
    latest: latestVersion(catalog) ?? plan.version,
    replaced,
    warnings,
  }
}

/** What a publish did, for people: the files, their URLs and checksums, and the add command. */
export function formatPublishResult(result: PublishResult): string {
  const lines = [`Published ${result.name} ${result.version} for ${result.architecture}${result.replaced ? ' (replaced)' : ''}; the catalog lists ${result.versions.join(', ')}.`]
  for (const file of result.files) lines.push(`  ${file.provider.padEnd(10)} ${file.architecture.padEnd(7)} ${file.url}  sha256 ${file.sha256}`)
  if (result.base) lines.push(`  blade base ${result.base.path} (${result.base.virtualSizeGiB} GiB, read-only)`)
  for (const warning of result.warnings) lines.push(`Warning: ${warning}`)
  lines.push(`Students add it with: vagrant box add ${result.catalog.url}`)
  return lines.join('\n')
}
