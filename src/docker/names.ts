import {ShienError} from '../errors.js'

/**
 * Container and image names as the caller types them. They become `<account>-<name>` and a
 * host name `<account>-<name>.<domain>` in nginx, so only what a DNS label holds: lower-case
 * letters, digits and inner hyphens. No dots, slashes or shell characters.
 */
export const NAME_PATTERN = /^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/

/** The label every container and image ie-docker makes carries: whose it is. */
export const OWNER_LABEL = 'shien.account'

export function checkName(raw: string, what: 'container' | 'image'): string {
  if (!NAME_PATTERN.test(raw)) {
    throw new ShienError(`"${raw}" is not a ${what} name: use lower-case letters, digits and hyphens (at most 40).`, {
      code: 'BAD_NAME',
      exit: 'usage',
      suggestions: [what === 'container' ? 'Example: ie-docker run -d --name web IMAGE' : 'Example: ie-docker build -t myimg .'],
    })
  }
  return raw
}

/** `web` → `e195701-web`: every account's names live apart. */
export function fullName(account: string, name: string): string {
  return `${account}-${name}`
}

/** An image reference as `[TAG]`: `myimg` or `myimg:1.0`, split and checked. */
export function parseImageRef(raw: string): {name: string; tag: string} {
  const m = /^([^:]+)(?::([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?$/.exec(raw)
  if (m === null) throw new ShienError(`"${raw}" is not an image name (NAME or NAME:TAG).`, {code: 'BAD_NAME', exit: 'usage'})
  return {name: checkName(m[1], 'image'), tag: m[2] ?? 'latest'}
}

/** Engines write local images differently (podman adds `localhost/`); compare without it, tag included. */
export function normalizeImage(ref: string): string {
  const bare = ref.startsWith('localhost/') ? ref.slice('localhost/'.length) : ref
  return bare.slice(bare.lastIndexOf('/') + 1).includes(':') ? bare : `${bare}:latest`
}
