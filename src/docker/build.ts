import {lstat, readFile, realpath, writeFile} from 'node:fs/promises'
import {dirname, join, relative, resolve, sep} from 'node:path'

import {ShienError} from '../errors.js'
import {isFolderAs, realpathAs} from '../privileged/as-owner.js'
import type {RunAs} from '../process/run.js'
import type {BuildRequest} from './build-args.js'
import {snapshotContext} from './build-context.js'
import {checkContainerfile} from './containerfile.js'
import {checkImageRoom, checkImageStorageAfter, pruneDangling} from './image-quota.js'
import type {DockerContext} from './context.js'
import {resolveImage} from './images.js'
import {OWNER_LABEL, fullName, parseImageRef} from './names.js'

/** What `build` made: the image as the owner names it, the engine's name and its id. */
export interface BuildResult {
  name: string
  image: string
  id: string
  /** Bytes of the context the engine built from. */
  contextBytes: number
  /** Context entries left out (devices, fifos, sockets). */
  skipped: string[]
}

/**
 * Builds an image for the owner from a context folder in their storage. The context is copied
 * (as the owner) into a private folder first, the Containerfile is checked and its images
 * resolved (containerfile.ts), and the engine builds with nothing pulled, the owner's label
 * (which a LABEL in the file cannot override), the owner's memory and CPU limits on every
 * RUN step, and the admin's build arguments. The image is `<account>-NAME:TAG`.
 */
export async function buildImage(ctx: DockerContext, req: BuildRequest, o: {cwd: string; progress: (text: string) => void}): Promise<BuildResult> {
  const ref = parseImageRef(req.tag)
  const image = `${fullName(ctx.owner.account, ref.name)}:${ref.tag}`
  const home = await realpath(ctx.home)
  const owner = {uid: ctx.owner.uid, gid: ctx.owner.gid}
  const contextDir = await inside(owner, resolve(o.cwd, req.context), home, 'context folder', ctx.signal)
  if (!(await isFolderAs(owner, contextDir, {signal: ctx.signal}))) throw refused(req.context, 'it is not a folder', home)
  // docker reads -f relative to the working directory; it must be in the context, which is all
  // that is copied.
  const file = req.file === undefined ? undefined : relative(contextDir, await inside(owner, resolve(o.cwd, req.file), contextDir, 'Containerfile', ctx.signal))
  await checkImageRoom(ctx, image)
  const snapshot = await snapshotContext(contextDir, {uid: ctx.owner.uid, gid: ctx.owner.gid, maxBytes: ctx.settings.buildContextMiB * 1024 * 1024, signal: ctx.signal})
  try {
    const source = join(snapshot.dir, file ?? (await defaultContainerfile(snapshot.dir)))
    if (!(await lstat(source).catch(() => undefined))?.isFile()) {
      throw new ShienError(`${relative(snapshot.dir, source)} in ${req.context} is not a regular file.`, {code: 'USAGE', exit: 'usage', suggestions: ['Point -f at the Containerfile itself, not at a link.']})
    }
    const checked = await checkContainerfile(await readFile(source, 'utf8'), (raw) => resolveImage(ctx, raw))
    // Outside the context, so the build cannot COPY the rewritten file by accident.
    const containerfile = join(dirname(snapshot.dir), 'Containerfile')
    await writeFile(containerfile, checked, {mode: 0o600})
    const cpuPeriod = 100_000
    await engineBuild(ctx, [
      'build', '--pull=never', '--force-rm', '--file', containerfile, '--tag', image, '--label', `${OWNER_LABEL}=${ctx.owner.account}`,
      '--memory', `${ctx.limits.memoryMiB}m`, '--cpu-period', String(cpuPeriod), '--cpu-quota', String(Math.round(ctx.limits.cpus * cpuPeriod)),
      ...ctx.settings.buildArgs,
      ...req.buildArgs.flatMap((a) => ['--build-arg', a]),
      ...(req.noCache ? ['--no-cache'] : []),
      ...(req.target === undefined ? [] : ['--target', req.target]),
      snapshot.dir,
    ], o.progress)
    await checkImageStorageAfter(ctx, image)
    // The previous image of a NAME:TAG built again is left dangling.
    await pruneDangling(ctx)
    const id = (await ctx.engine.exec(['image', 'inspect', '--format', '{{.Id}}', image], {signal: ctx.signal})).trim()
    return {name: `${ref.name}:${ref.tag}`, image, id, contextBytes: snapshot.bytes, skipped: snapshot.skipped}
  } finally {
    await snapshot.remove()
  }
}

/** podman's order: Containerfile, then Dockerfile. */
async function defaultContainerfile(dir: string): Promise<string> {
  for (const name of ['Containerfile', 'Dockerfile']) if (await lstat(join(dir, name)).catch(() => undefined)) return name
  throw new ShienError('The context folder has no Containerfile or Dockerfile.', {code: 'USAGE', exit: 'usage', suggestions: ['Add one, or name it with -f FILE.']})
}

/**
 * The real path of `path` as the owner resolves it, which must be `root` or inside it once every
 * link is resolved (as root, a refusal would tell whether any path on the blade exists).
 */
async function inside(owner: RunAs, path: string, root: string, what: string, signal: AbortSignal): Promise<string> {
  const real = await realpathAs(owner, path, {signal})
  if (real === undefined) throw refused(path, 'it does not exist or you cannot reach it', root, what)
  if (real !== root && !real.startsWith(root + sep)) {
    throw refused(path, real === path ? `it is outside ${root}` : `it leads to ${real}, outside ${root}`, root, what)
  }
  return real
}

/** `root` is the storage folder for a context folder, and the context folder for a Containerfile. */
function refused(path: string, why: string, root: string, what = 'context folder'): ShienError {
  return new ShienError(`The ${what} ${path} is refused: ${why}.`, {
    code: 'BUILD_CONTEXT',
    exit: 'refused',
    suggestions: [what === 'Containerfile' ? `Put the Containerfile inside the context folder ${root}.` : `Build from a folder inside your storage folder ${root}.`],
  })
}

/** Runs the engine's build; a failed one leaves no dangling layers of the owner behind. */
async function engineBuild(ctx: DockerContext, args: string[], progress: (text: string) => void): Promise<void> {
  try {
    await ctx.engine.streamed(args, {signal: ctx.signal, timeoutMs: ctx.settings.buildTimeoutMinutes * 60_000, output: progress})
  } catch (error) {
    await pruneDangling(ctx)
    throw error
  }
}
