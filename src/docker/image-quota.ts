import {ShienError} from '../errors.js'
import type {DockerContext} from './context.js'
import {OWNER_LABEL, normalizeImage} from './names.js'

/** The owner's images as the engine stores them: tagged ones and dangling ones (old builds). */
export interface OwnImages {
  /** Tagged images (`<account>-NAME:TAG`), by normalized name. */
  tags: Set<string>
  /** Tagged images (two tags of one id count twice, as `images` lists them). */
  count: number
  /** The sizes of every distinct image of the owner, dangling ones too (shared base layers counted in each). */
  bytes: number
}

const MIB = 1024 * 1024

/** Everything carrying the owner's label: the engine's view, whatever its names. */
export async function ownImages(ctx: DockerContext): Promise<OwnImages> {
  const format = '{{.ID}}\t{{.VirtualSize}}\t{{.Dangling}}\t{{.Repository}}:{{.Tag}}'
  const out = await ctx.engine.exec(['images', '--filter', `label=${OWNER_LABEL}=${ctx.owner.account}`, '--format', format], {signal: ctx.signal})
  const sizes = new Map<string, number>()
  const tags = new Set<string>()
  for (const [id, size, dangling, ref] of out.split('\n').filter((l) => l.trim() !== '').map((l) => l.split('\t'))) {
    sizes.set(id, Number(size) || 0)
    if (dangling === 'true' || ref === '<none>:<none>') continue
    tags.add(normalizeImage(ref))
  }
  return {tags, count: tags.size, bytes: [...sizes.values()].reduce((a, b) => a + b, 0)}
}

/** Before a build: one more image must fit the count, and the storage must not be full already. */
export async function checkImageRoom(ctx: DockerContext, image: string): Promise<void> {
  const own = await ownImages(ctx)
  if (!own.tags.has(normalizeImage(image)) && own.count >= ctx.limits.images) {
    throw new ShienError(`You have ${own.count} images, your limit is ${ctx.limits.images}.`, {
      code: 'IMAGE_LIMIT',
      exit: 'refused',
      suggestions: ['Remove one you no longer need (ie-docker images, then ie-docker rmi NAME), or build over an existing NAME:TAG.'],
    })
  }
  if (own.bytes >= ctx.limits.imageStorageMiB * MIB) throw storageFull(own.bytes, ctx.limits.imageStorageMiB)
}

/** After a build: over the storage limit, the new image is removed again and the build refused. */
export async function checkImageStorageAfter(ctx: DockerContext, image: string): Promise<void> {
  const own = await ownImages(ctx)
  if (own.bytes <= ctx.limits.imageStorageMiB * MIB) return
  await ctx.engine.probe(['rmi', '--force', image], {signal: ctx.signal})
  await pruneDangling(ctx)
  throw storageFull(own.bytes, ctx.limits.imageStorageMiB, image)
}

/**
 * Removes the owner's dangling images: the layers a failed or refused build left behind, and the
 * previous image of a NAME:TAG built again. Only images with the owner's label, never anyone else's.
 */
export async function pruneDangling(ctx: DockerContext): Promise<void> {
  await ctx.engine.probe(['image', 'prune', '--force', '--filter', `label=${OWNER_LABEL}=${ctx.owner.account}`], {signal: ctx.signal})
}

function storageFull(bytes: number, limitMiB: number, removed?: string): ShienError {
  const used = `Your images take ${Math.ceil(bytes / MIB)} MiB, your limit is ${limitMiB} MiB`
  return new ShienError(removed ? `${used}: the image just built (${removed}) was removed again.` : `${used}.`, {
    code: 'IMAGE_STORAGE_LIMIT',
    exit: 'refused',
    suggestions: ['Remove images you no longer need (ie-docker images, then ie-docker rmi NAME), or make the image smaller.'],
  })
}
