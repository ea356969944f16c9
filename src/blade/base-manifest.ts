import {createHash, randomBytes} from 'node:crypto'
import {lstat, mkdir, readFile, rename, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {isShienError, ShienError} from '../errors.js'
import {manifestOfImage} from '../delta/image-manifest.js'
import {type BlockManifest, encodeManifest, parseManifest} from '../delta/manifest.js'
import {QemuImgError} from '../qemu-img/qemu-img.js'
import type {BaseResult} from '../protocol/blade-steps.js'
import {type BaseBox, type BaseCheckOptions, type BaseLookupOptions, checkBaseUnchanged, findBase, withPublishedFile} from './base-box.js'
import type {BladeContext} from './caller.js'

/**
 * The `base` step: whether this blade has the published base of `box` at `version` and, when it
 * does, its block manifest for the laptop to compare its disk against.
 */
export async function describeBase(ctx: BladeContext, box: string, version: string, o: BaseLookupOptions = {}): Promise<BaseResult> {
  const found = await findBase(ctx, box, version, o)
  if (!found.available) return found
  const {base} = found
  const {manifest} = await baseManifest(ctx, base, o)
  return {
    available: true, box, version, architecture: base.architecture, ...(base.firmware ? {firmware: base.firmware} : {}), path: base.path, virtualSize: base.virtualSize,
    diskHash: manifest.diskHash.toString('hex'), manifest: encodeManifest(manifest).toString('base64'),
  }
}

/** Where a base's manifest came from: published beside it, this account's cache, or computed now. */
export type ManifestSource = 'published' | 'cache' | 'computed'

/**
 * The block manifest of a base's current content. `libvirt.manifest` beside the base (written
 * by `shien box publish`) when it is there, passes the same checks as the base and is not older
 * than it; otherwise the one this account computed before for exactly this file (same path,
 * inode, size, mtime and ctime), or one computed now with qemu-img and kept for next time.
 *
 * The cache is in the student's own storage, so the student can write anything there. That is
 * safe: a manifest only tells the laptop which blocks to send and the blade which base hash a
 * delta must name. After writing the blocks, apply-delta hashes the whole overlay, reading
 * through the base, and refuses it unless it is the disk the laptop hashed. A wrong manifest can
 * make the student's own push send too much or be refused, never produce a disk other than the
 * laptop's.
 */
export async function baseManifest(ctx: BladeContext, base: BaseBox, o: BaseCheckOptions = {}): Promise<{manifest: BlockManifest; source: ManifestSource}> {
  const published = await publishedManifest(base, o)
  if (published) return {manifest: published, source: 'published'}
  const cacheFile = join(ctx.paths.manifestCache, `${cacheKey(base)}.bmf`)
  const cached = await readCached(cacheFile, base)
  if (cached) return {manifest: cached, source: 'cache'}
  await mkdir(ctx.paths.manifestCache, {recursive: true, mode: 0o700})
  const manifest = await manifestOfImage(base.path, {format: 'qcow2', signal: o.signal, tmpDir: ctx.paths.manifestCache}).catch((error: unknown) => {
    if (!(error instanceof QemuImgError)) throw error
    throw new ShienError(`qemu-img could not read the base ${base.path}: ${error.line}`, {code: 'BASE_UNREADABLE', exit: 'remote', suggestions: ['Push with --full.']})
  })
  // Hashed from the file by path: if it was replaced meanwhile, the manifest may be of either.
  await checkBaseUnchanged(base)
  const tmp = join(ctx.paths.manifestCache, `.${randomBytes(6).toString('hex')}.tmp`)
  try {
    await writeFile(tmp, encodeManifest(manifest), {mode: 0o600, flag: 'wx'})
    await rename(tmp, cacheFile)
  } catch {
    // A cache that cannot be written (quota) costs the next push time, not this one.
    await rm(tmp, {force: true})
  }
  return {manifest, source: 'computed'}
}

/** `libvirt.manifest` (or its architecture's), when it is there, trusted like the base, and describes it. */
async function publishedManifest(base: BaseBox, o: BaseCheckOptions): Promise<BlockManifest | undefined> {
  return withPublishedFile(base.manifestPath, o, async (handle, stats) => {
    // Copied after the base in the same publish: older means the base was replaced after it.
    if (stats.mtimeNs < base.stat.mtimeNs) return undefined
    if (stats.size > BigInt(maxManifestBytes(base.virtualSize))) return undefined
    const manifest = parseManifest(await handle.readFile(), base.manifestPath)
    return manifest.virtualSize === base.virtualSize ? manifest : undefined
  }).catch((error: unknown) => {
    // A damaged published manifest is not a reason to refuse the push: compute one instead.
    if (isShienError(error) && error.code.startsWith('MANIFEST_')) return undefined
    throw error
  })
}

async function readCached(path: string, base: BaseBox): Promise<BlockManifest | undefined> {
  const stats = await lstat(path).catch(() => undefined)
  if (!stats?.isFile() || stats.size > maxManifestBytes(base.virtualSize)) return undefined
  try {
    const manifest = parseManifest(await readFile(path), path)
    return manifest.virtualSize === base.virtualSize ? manifest : undefined
  } catch {
    await rm(path, {force: true})
    return undefined
  }
}

/** The base file as it is now: another file, or the same one changed, gets another key. */
export function cacheKey(base: BaseBox): string {
  const s = base.stat
  return createHash('sha256').update([base.path, s.dev, s.ino, s.size, s.mtimeNs, s.ctimeNs].join('\0')).digest('hex')
}

/** The size of a manifest whose every block holds data (docs/delta.md). */
function maxManifestBytes(virtualSize: number): number {
  return 72 + 33 * Math.ceil(virtualSize / 65536) + 32
}
