import {constants, type BigIntStats} from 'node:fs'
import {lstat, open, readlink, realpath, type FileHandle} from 'node:fs/promises'
import {join} from 'node:path'

import {versionProblem} from '../box/catalog-version.js'
import {ARCHITECTURES} from '../box/catalog.js'
import {boxesPaths, publishedFileNames} from '../config/storage-layout.js'
import {BASE_PLATFORM_MAX_BYTES, type BasePlatform, parseBasePlatform} from '../delta/base-platform.js'
import {badInput, isShienError, ShienError} from '../errors.js'
import {checkCatalogBox} from '../names.js'
import {runTool, type RunAs} from '../process/run.js'
import {QemuImgError, qemuImgInfo} from '../qemu-img/qemu-img.js'
import type {BladeContext} from './caller.js'

/**
 * A published base that passed every check: `<root>/boxes/<org>/<name>/<version>/libvirt.qcow2`,
 * or another architecture's (`libvirt-arm64.qcow2`, storage-layout's publishedFileNames).
 */
export interface BaseBox {
  box: string
  version: string
  /** The architecture whose base this is (Vagrant's name), as asked for. */
  architecture: string
  /** The firmware its platform record names; undefined for a base published before publish wrote one. */
  firmware?: 'bios' | 'efi'
  /** Its real path: inside `<root>/boxes` (resolved once), reached without symlinks. */
  path: string
  /** Its block manifest's path, when publish wrote one (it may not be there). */
  manifestPath: string
  versionDir: string
  /** Its fstat as opened and checked; {@link checkBaseUnchanged} compares against it. */
  stat: BigIntStats
  virtualSize: number
}

/** Whether the blade has the base, or in one line why not (the laptop then pushes the whole box). */
export type BaseLookup = {available: true; base: BaseBox} | {available: false; reason: string}

/** Which base: the architecture of the box pushed (Vagrant's name), amd64 when it declares none. */
export interface BaseLookupOptions extends BaseCheckOptions {
  architecture?: string
}

export interface BaseCheckOptions {
  signal?: AbortSignal
  /**
   * Whose write access the checks are about. The blade steps run as the student over SSH, so
   * by default it is this process's user; a caller running as root (the tests) names the student.
   */
  student?: RunAs
}

/**
 * Finds the published base of `box` at `version` and checks that it can be trusted as the
 * backing file of the student's image: every folder from `<root>/boxes` down and the file itself
 * reached without a symlink, a regular file, neither it nor its folders writable by the student
 * (so it cannot change under the overlay), and a standalone qcow2. A base that is not there is
 * `available: false`; one that is there but fails a check is refused (exit 3).
 */
export async function findBase(ctx: BladeContext, box: string, version: string, o: BaseLookupOptions = {}): Promise<BaseLookup> {
  checkCatalogBox(box)
  const problem = versionProblem(version)
  if (problem) throw new ShienError(`"${version}" is not a box version: ${problem}.`, {code: 'BAD_VERSION', exit: 'usage'})
  const architecture = o.architecture ?? 'amd64'
  if (!(ARCHITECTURES as readonly string[]).includes(architecture) || architecture === 'unknown') {
    throw new ShienError(`"${architecture}" is not an architecture Vagrant names (${ARCHITECTURES.filter((a) => a !== 'unknown').join(', ')}).`, {code: 'BAD_ARCHITECTURE', exit: 'usage'})
  }
  const names = publishedFileNames(architecture)
  const configured = boxesPaths(ctx.config.storageRoot).root
  // The storage root is the admin's (config.json); below it, nothing is followed.
  const root = await realpath(configured).catch(() => undefined)
  if (root === undefined) return {available: false, reason: `this blade has no published boxes (${configured})`}
  await checkFolder(root, o)
  const [org, name] = box.split('/')
  let dir = root
  for (const [part, missing] of [[org, `${box} is not published on this blade`], [name, `${box} is not published on this blade`], [version, `the blade has no version ${version} of ${box}`]]) {
    dir = join(dir, part)
    const stats = await lstat(dir, {bigint: true}).catch(missingIsUndefined)
    if (stats === undefined) return {available: false, reason: missing}
    if (stats.isSymbolicLink()) throw symlinkRefused(dir)
    if (!stats.isDirectory()) throw badInput('BASE_NOT_FILE', `${dir} is not a folder.`, [ASK_ADMIN])
    await checkFolder(dir, o, stats)
  }
  const path = join(dir, names.base)
  const stat = await withPublishedFile(path, o, async (_handle, stats) => stats)
  const what = architecture === 'amd64' ? 'libvirt base' : `${architecture} libvirt base`
  if (stat === undefined) return {available: false, reason: `${box} ${version} has no ${what} (${names.base}) on this blade`}
  const platform = await readPlatform(join(dir, names.platform), o)
  if (typeof platform === 'string') return {available: false, reason: platform}
  // A base of "unknown" architecture was published so on purpose: taken as the name says.
  if (platform && platform.architecture !== architecture && platform.architecture !== 'unknown') {
    return {available: false, reason: `the published base ${path} is ${platform.architecture}, and the box is ${architecture}`}
  }
  const virtualSize = await standaloneSize(path, o.signal)
  const base = {box, version, architecture, firmware: platform?.firmware, path, manifestPath: join(dir, names.manifest), versionDir: dir, stat, virtualSize}
  await checkBaseUnchanged(base)
  return {available: true, base}
}

/**
 * The base's platform record, trusted like the base; undefined for a base published before
 * publish wrote one (its architecture is then the one its name says). A record that cannot be
 * read is why there is no delta, in one line: the push sends the whole box.
 */
async function readPlatform(path: string, o: BaseCheckOptions): Promise<BasePlatform | string | undefined> {
  return withPublishedFile(path, o, async (handle, stats) => {
    if (stats.size > BigInt(BASE_PLATFORM_MAX_BYTES)) return `the published ${path} is larger than a platform record`
    return parseBasePlatform(await handle.readFile({encoding: 'utf8'}), path)
  }).catch((error: unknown) => {
    if (isShienError(error) && error.code === 'BASE_PLATFORM_INVALID') return error.message.replace(/\.$/, '')
    throw error
  })
}

/**
 * Opens a published file without following a symlink (O_NOFOLLOW on the file, the kernel's
 * own name for the descriptor for the folders above it), checks it on the descriptor (a regular
 * file, not writable by the student) and runs `use` on it. Undefined when it does not exist.
 */
export async function withPublishedFile<T>(path: string, o: BaseCheckOptions, use: (handle: FileHandle, stats: BigIntStats) => Promise<T>): Promise<T | undefined> {
  let handle: FileHandle
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return undefined
    if (code === 'ELOOP') throw symlinkRefused(path)
    throw new ShienError(`Cannot open the published base file ${path}: ${(error as Error).message}.`, {code: 'BASE_UNREADABLE', exit: 'remote', cause: error, suggestions: [ASK_ADMIN]})
  }
  try {
    if ((await readlink(`/proc/self/fd/${handle.fd}`)) !== path) throw symlinkRefused(path)
    const stats = await handle.stat({bigint: true})
    if (!stats.isFile()) throw badInput('BASE_NOT_FILE', `${path} is not a regular file.`, [ASK_ADMIN])
    await checkNotWritable(path, stats, o)
    return await use(handle, stats)
  } finally {
    await handle.close()
  }
}

/** Refuses a base that is no longer the file that was checked (replaced, rewritten, touched). */
export async function checkBaseUnchanged(base: BaseBox): Promise<void> {
  const now = await lstat(base.path, {bigint: true}).catch(missingIsUndefined)
  const then = base.stat
  if (!now || now.ino !== then.ino || now.dev !== then.dev || now.size !== then.size || now.mtimeNs !== then.mtimeNs || now.ctimeNs !== then.ctimeNs) {
    throw new ShienError(`The base ${base.path} changed while it was being used.`, {
      code: 'BASE_CHANGED', exit: 'remote', suggestions: ['Push again; if it keeps happening, ask the instructor whether the version is being republished.'],
    })
  }
}

async function checkFolder(dir: string, o: BaseCheckOptions, stats?: BigIntStats): Promise<void> {
  await checkNotWritable(dir, stats ?? (await lstat(dir, {bigint: true})), o)
}

/**
 * A file or folder the student could change is no base: owned by the student (who can chmod
 * it back), writable by everyone, or writable by the student in any other way the kernel
 * allows (group, ACL), as `test -w` run as the student tells.
 */
async function checkNotWritable(path: string, stats: BigIntStats, o: BaseCheckOptions): Promise<void> {
  const uid = BigInt(o.student?.uid ?? process.getuid?.() ?? -1)
  const why = stats.uid === uid ? 'you own it' : (stats.mode & 0o002n) !== 0n ? 'everyone may write it' : (await writableBy(path, o)) ? 'you may write it' : undefined
  if (why === undefined) return
  throw badInput('BASE_WRITABLE', `The published base ${path} is not read-only to you (${why}): an image based on it could change under you.`, [ASK_ADMIN])
}

async function writableBy(path: string, o: BaseCheckOptions): Promise<boolean> {
  const r = await runTool('test', ['-w', path], {as: o.student, signal: o.signal, timeoutMs: 30_000})
  if (!r.started) throw new Error(`Cannot run test -w: ${r.stderr}`)
  return r.exitCode === 0
}

/** The base's virtual size; a base with a backing or data file, or not a qcow2, is refused. */
async function standaloneSize(path: string, signal?: AbortSignal): Promise<number> {
  const [layer] = await qemuImgInfo(path, {format: 'qcow2', signal}).catch((error: unknown) => {
    if (!(error instanceof QemuImgError)) throw error
    throw badInput('BASE_NOT_QCOW2', `The published base ${path} is not a qcow2 image qemu-img can read: ${error.line}.`, [ASK_ADMIN])
  })
  if (layer.backingFile !== undefined || layer.dataFile !== undefined) {
    throw badInput('BASE_NOT_STANDALONE', `The published base ${path} has a ${layer.backingFile === undefined ? 'data' : 'backing'} file; a base stands alone.`, [ASK_ADMIN])
  }
  return layer.virtualSize
}

function symlinkRefused(path: string): ShienError {
  return badInput('BASE_SYMLINK', `${path} is a symlink or is reached through one; published bases must be real files under the boxes folder.`, [ASK_ADMIN])
}

function missingIsUndefined(error: unknown): undefined {
  if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined
  throw error
}

const ASK_ADMIN = 'Push with --full, and tell the instructor or an admin: published boxes must be real files, read-only to students (shien box publish makes them so).'
