import {ShienError} from '../errors.js'
import type {DockerContext} from './context.js'
import {OWNER_LABEL, fullName, normalizeImage, parseImageRef} from './names.js'
import {renderTable} from '../text-table.js'

export interface ImageInfo {
  /** As the owner names it in run: `myimg:latest`, or a shared image as the admin listed it. */
  name: string
  image: string
  id: string
  size: string
  shared: boolean
}

/** The images the owner may run: the blade's shared ones and their own (`<account>-*`). */
export async function listImages(ctx: DockerContext): Promise<{images: ImageInfo[]}> {
  const out = await ctx.engine.exec(['images', '--format', '{{.Repository}}:{{.Tag}}\t{{.ID}}\t{{.Size}}'], {signal: ctx.signal})
  const prefix = `${ctx.owner.account}-`
  const shared = new Set(ctx.settings.images.map(normalizeImage))
  const images: ImageInfo[] = []
  for (const [ref, id = '', size = ''] of out.split('\n').filter((l) => l.trim() !== '').map((l) => l.split('\t'))) {
    const image = normalizeImage(ref)
    if (shared.has(image)) images.push({name: image, image, id, size, shared: true})
    else if (image.startsWith(prefix) && (await ownerOf(ctx, image)) === ctx.owner.account) {
      images.push({name: image.slice(prefix.length), image, id, size, shared: false})
    }
  }
  return {images: images.sort((a, b) => a.name.localeCompare(b.name))}
}

/** An image the admin offers to everyone, or one of the owner's own (`myimg` → `<account>-myimg`). */
export async function resolveImage(ctx: DockerContext, raw: string): Promise<string> {
  const shared = ctx.settings.images.find((i) => normalizeImage(i) === normalizeImage(raw))
  if (shared !== undefined) return shared
  const notOffered = new ShienError(`The image "${raw}" is neither one offered on this blade nor one of yours.`, {
    code: 'IMAGE_NOT_ALLOWED',
    exit: 'refused',
    suggestions: ['See the images you may run: ie-docker images'],
  })
  // Own images are NAME[:TAG] with no hyphen in NAME (names.ts); anything else is not theirs.
  if (!/^[a-z0-9]{1,40}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$/.test(raw)) throw notOffered
  const ref = parseImageRef(raw)
  const own = `${fullName(ctx.owner.account, ref.name)}:${ref.tag}`
  if ((await ownerOf(ctx, own)) !== ctx.owner.account) throw notOffered
  return own
}

/** Removes one of the owner's images; shared images and others' are not theirs to remove. */
export async function removeImage(ctx: DockerContext, raw: string): Promise<{name: string; image: string; action: 'removed'}> {
  const ref = parseImageRef(raw)
  const image = `${fullName(ctx.owner.account, ref.name)}:${ref.tag}`
  if ((await ownerOf(ctx, image)) !== ctx.owner.account) {
    throw new ShienError(`You have no image "${raw}".`, {code: 'NO_SUCH_IMAGE', exit: 'refused', suggestions: ['See your images: ie-docker images']})
  }
  await ctx.engine.exec(['rmi', image], {signal: ctx.signal})
  return {name: `${ref.name}:${ref.tag}`, image, action: 'removed'}
}

async function ownerOf(ctx: DockerContext, image: string): Promise<string | undefined> {
  const r = await ctx.engine.probe(['image', 'inspect', '--format', `{{index .Config.Labels "${OWNER_LABEL}"}}`, image], {signal: ctx.signal})
  return r.ok ? r.stdout.trim() : undefined
}

export function describeImages(r: {images: ImageInfo[]}): string {
  if (r.images.length === 0) return 'No images you may run.'
  return renderTable(['NAME', 'ID', 'SIZE', ''], r.images.map((i) => [i.name, i.id.slice(0, 12), i.size, i.shared ? '(shared)' : '']))
}
