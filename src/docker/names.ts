import {ShienError} from '../errors.js'

/**
 * Container and image names as the caller types them: lower-case letters and digits, no
 * hyphens. They become `<account>-<name>` and a host name `<account>-<name>.<domain>` in nginx;
 * with no hyphen in the name, that joined name splits back at its last hyphen into exactly one
 * account and one name (account names may hold hyphens: `e19` + `5701-web` and `e19-5701` +
 * `web` would otherwise both be `e19-5701-web`).
 */
export const NAME_PATTERN = /^[a-z0-9]{1,40}$/

/** Accounts ie-docker acts for: their name starts a DNS label (`<account>-<name>.<domain>`). */
export const ACCOUNT_PATTERN = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/

/** The longest DNS label: the joined name must fit in one. */
const LABEL_MAX = 63

/** The label every container and image ie-docker makes carries: whose it is. */
export const OWNER_LABEL = 'shien.account'

export function checkName(raw: string, what: 'container' | 'image'): string {
  if (!NAME_PATTERN.test(raw)) {
    throw new ShienError(`"${raw}" is not a ${what} name: use lower-case letters and digits only, no hyphens (at most 40).`, {
      code: 'BAD_NAME',
      exit: 'usage',
      suggestions: [what === 'container' ? 'Example: ie-docker run -d --name web IMAGE' : 'Example: ie-docker build -t myimg .'],
    })
  }
  return raw
}

/** `web` → `e195701-web`: every account's names live apart. */
export function fullName(account: string, name: string): string {
  const full = `${account}-${name}`
  if (full.length > LABEL_MAX) {
    throw new ShienError(`"${name}" is too long for account ${account}: ${full} must fit in ${LABEL_MAX} characters (a host name label).`, {
      code: 'BAD_NAME',
      exit: 'usage',
      suggestions: [`Use a name of at most ${LABEL_MAX - account.length - 1} characters.`],
    })
  }
  return full
}

/**
 * The accounts ie-docker can act for: a name that can start a host name. Others (upper case,
 * dots, underscores) would give containers no valid web address.
 */
export function checkAccount(account: string): string {
  if (!ACCOUNT_PATTERN.test(account) || account.length > LABEL_MAX - 2) {
    throw new ShienError(`Account ${account} cannot use containers: its name is not a valid host name part (lower-case letters, digits and inner hyphens).`, {
      code: 'ACCOUNT_NOT_SUPPORTED',
      exit: 'refused',
      suggestions: ['Ask an admin to give the account a name of lower-case letters and digits.'],
    })
  }
  return account
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
