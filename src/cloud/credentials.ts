import {readFileSync, statSync} from 'node:fs'
import {homedir} from 'node:os'
import {join} from 'node:path'

import {ShienError} from '../errors.js'
import {type ApiCredentials, Secret} from './secret.js'

/** What a usacloud profile (`~/.usacloud/<name>/config.json`) holds that shien uses. */
export interface UsacloudProfile {
  AccessToken?: string
  AccessTokenSecret?: string
  Zone?: string
  APIRootURL?: string
}

export interface ResolvedCredentials {
  credentials: ApiCredentials
  /** The profile's default zone and API root, when a profile was read. */
  profile?: {path: string; zone?: string; apiRoot?: string}
}

const noCredentials = (detail: string) =>
  new ShienError(`No Sakura Cloud API key: ${detail}`, {
    code: 'CLOUD_NO_CREDENTIALS',
    exit: 'usage',
    suggestions: [
      'Export SAKURACLOUD_ACCESS_TOKEN and SAKURACLOUD_ACCESS_TOKEN_SECRET (from the control panel, API keys),',
      'or create a usacloud profile: usacloud config (it writes ~/.usacloud/default/config.json, mode 600).',
    ],
  })

/**
 * The API key, from SAKURACLOUD_ACCESS_TOKEN / SAKURACLOUD_ACCESS_TOKEN_SECRET, else from the
 * usacloud profile that usacloud itself would use: `--profile`, SAKURACLOUD_PROFILE, the name in
 * `~/.usacloud/current`, or `default` (the folder moves with SAKURACLOUD_PROFILE_DIR).
 * Never from the command line, where other users could read it in the process list.
 */
export function resolveCredentials(env: NodeJS.ProcessEnv, profileName?: string): ResolvedCredentials {
  const token = env.SAKURACLOUD_ACCESS_TOKEN
  const secret = env.SAKURACLOUD_ACCESS_TOKEN_SECRET
  if (token && secret && !profileName) {
    return {credentials: {token, secret: new Secret(secret), origin: 'SAKURACLOUD_ACCESS_TOKEN(_SECRET)'}}
  }
  const dir = profileDir(env)
  const name = profileName ?? env.SAKURACLOUD_PROFILE ?? currentProfile(dir)
  if (!/^[A-Za-z0-9._-]+$/.test(name) || name.startsWith('.')) {
    throw new ShienError(`"${name}" is not a usacloud profile name.`, {code: 'CLOUD_BAD_PROFILE', exit: 'usage'})
  }
  const path = join(dir, name, 'config.json')
  const profile = readProfile(path, profileName !== undefined || env.SAKURACLOUD_PROFILE !== undefined)
  if (!profile) {
    throw noCredentials(token || secret ? 'only one of SAKURACLOUD_ACCESS_TOKEN and SAKURACLOUD_ACCESS_TOKEN_SECRET is set.' : `neither the environment nor ${path} has one.`)
  }
  if (!profile.AccessToken || !profile.AccessTokenSecret) throw noCredentials(`${path} has no AccessToken and AccessTokenSecret.`)
  return {
    credentials: {token: profile.AccessToken, secret: new Secret(profile.AccessTokenSecret), origin: path},
    profile: {path, zone: profile.Zone || undefined, apiRoot: profile.APIRootURL || undefined},
  }
}

function profileDir(env: NodeJS.ProcessEnv): string {
  const base = env.SAKURACLOUD_PROFILE_DIR || env.USACLOUD_PROFILE_DIR || env.HOME || homedir()
  return join(base, '.usacloud')
}

function currentProfile(dir: string): string {
  try {
    return readFileSync(join(dir, 'current'), 'utf8').replace(/[\s\u3000]/g, '') || 'default'
  } catch {
    return 'default'
  }
}

/** Reads a profile that only its owner can read; a missing `default` is not an error. */
function readProfile(path: string, named: boolean): UsacloudProfile | undefined {
  let stats
  try {
    stats = statSync(path)
  } catch {
    if (named) throw new ShienError(`The usacloud profile ${path} does not exist.`, {code: 'CLOUD_BAD_PROFILE', exit: 'usage'})
    return undefined
  }
  const uid = process.getuid?.()
  // An API secret others can read is a leaked secret: refuse it as ssh refuses a readable key.
  if ((stats.mode & 0o077) !== 0 || (uid !== undefined && stats.uid !== uid)) {
    throw new ShienError(`${path} holds an API secret but others can read it (mode ${(stats.mode & 0o777).toString(8)}) or it is not yours.`, {
      code: 'CLOUD_PROFILE_UNSAFE',
      exit: 'refused',
      suggestions: [`chmod 600 ${path}`, 'If others could read it, issue a new API key in the control panel.'],
    })
  }
  try {
    const value = JSON.parse(readFileSync(path, 'utf8')) as unknown
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as UsacloudProfile
  } catch {
    // reported below
  }
  throw new ShienError(`${path} is not a JSON object.`, {code: 'CLOUD_BAD_PROFILE', exit: 'usage'})
}
