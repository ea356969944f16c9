import {existsSync, statSync} from 'node:fs'
import {basename, dirname, join, resolve} from 'node:path'

import {findBlade} from '../client/find-blade.js'
import {isShienError, ShienError} from '../errors.js'
import {SLOT_PATTERN} from '../names.js'
import type {SshTarget} from '../transport/ssh-target.js'
import {resolveCredentials} from './credentials.js'
import type {ApiCredentials} from './secret.js'
import {type CloudSettings, resolveSettings, ZONE_PATTERN} from './settings.js'

export interface CloudPushInputs {
  source: string
  zone?: string
  name?: string
  description?: string
  keepOnFailure?: boolean
  timeoutSeconds?: number
  caFile?: string
  profile?: string
  host?: string
  /** ProxyJump hops from the command line (`--jump`, like `ssh -J`). */
  jump?: string
  workDir?: string
  acceptNewHostKey?: boolean
  cwd: string
  env: NodeJS.ProcessEnv
}

/** A local image file, or a slot's image on the blade (where the work then runs). */
export type CloudSource =
  | {kind: 'file'; path: string; workDir: string}
  | {kind: 'slot'; slot: string; target: SshTarget; bladeCommand: string}

/** Everything a cloud push needs, resolved before anything runs. */
export interface CloudPushPlan {
  source: CloudSource
  zone: string
  archive: {name: string; description: string; tags: string[]}
  keepOnFailure: boolean
  acceptNewHostKey: boolean
  settings: CloudSettings
  credentials: ApiCredentials
}

/** Names Sakura Cloud takes for an archive (up to 64 characters, no control characters). */
export const ARCHIVE_NAME = /^[^\p{Cc}]{1,64}$/u

/**
 * Resolves the source, zone, name, API key and settings, and reports every problem at once.
 * A two-digit source (01) is a slot on the blade; anything else is a file (write ./01 for a
 * file of that name).
 */
export function planCloudPush(input: CloudPushInputs): CloudPushPlan {
  const problems: Array<string | ShienError> = []
  const attempt = <T>(work: () => T): T | undefined => {
    try {
      return work()
    } catch (error) {
      problems.push(isShienError(error) ? error : (error as Error).message)
      return undefined
    }
  }
  const resolved = attempt(() => resolveCredentials(input.env, input.profile))
  const settings = attempt(() => resolveSettings(input.env, {profileApiRoot: resolved?.profile?.apiRoot, caFile: input.caFile, timeoutSeconds: input.timeoutSeconds}))
  const source = attempt(() => resolveSource(input))
  const zone = input.zone ?? input.env.SAKURACLOUD_ZONE ?? resolved?.profile?.zone
  // Without a readable profile its Zone is unknown too: report the profile, not a missing zone.
  if (!zone && resolved) problems.push('No zone: pass --zone (is1a, is1b, tk1a, ...) or set SAKURACLOUD_ZONE.')
  if (zone && !ZONE_PATTERN.test(zone)) problems.push(`"${zone}" is not a Sakura Cloud zone (is1a, is1b, tk1a, tk1b, tk1v).`)
  const name = input.name ?? (source ? defaultName(source) : 'image')
  if (!ARCHIVE_NAME.test(name)) problems.push(`"${name}" cannot name an archive: 1 to 64 characters, no control characters (--name).`)
  if (problems.length > 0 || !resolved || !settings || !source || !zone) throw planError(problems)
  return {
    source,
    zone,
    archive: {name, description: input.description ?? defaultDescription(source), tags: ['shien']},
    keepOnFailure: input.keepOnFailure ?? false,
    acceptNewHostKey: input.acceptNewHostKey ?? false,
    settings,
    credentials: resolved.credentials,
  }
}

function resolveSource(input: CloudPushInputs): CloudSource {
  const arg = input.source
  if (/^[0-9]{1,2}$/.test(arg)) {
    const slot = arg.padStart(2, '0')
    if (!SLOT_PATTERN.test(slot)) throw new Error(`Slot "${arg}" is not one of 01 to 99.`)
    const blade = findBlade(input)
    if (!blade) throw new Error('A slot lives on a blade: pass --host, set SHIEN_HOST, or run shien init in your project.')
    return {kind: 'slot', slot, ...blade}
  }
  const path = resolve(input.cwd, arg)
  if (!existsSync(path) || !statSync(path).isFile()) throw new Error(`${arg} is not a file.`)
  return {kind: 'file', path, workDir: input.workDir ? resolve(input.cwd, input.workDir) : dirname(path)}
}

function defaultName(source: CloudSource): string {
  if (source.kind === 'slot') return `${source.target.user}-${source.slot}`
  return basename(source.path).replace(/\.(img|raw|qcow2)$/i, '') || 'image'
}

function defaultDescription(source: CloudSource): string {
  if (source.kind === 'slot') return `Pushed by shien from slot ${source.slot} of ${source.target.user} on ${source.target.alias}`
  return `Pushed by shien from ${basename(source.path)}`
}

function planError(problems: Array<string | ShienError>): ShienError {
  // A single problem keeps its own code and advice (a profile others can read, say).
  if (problems.length === 1 && isShienError(problems[0])) return problems[0]
  const messages = problems.map((p) => (typeof p === 'string' ? p : p.message))
  return new ShienError(messages.length === 1 ? messages[0] : `The cloud push cannot start:\n  - ${messages.join('\n  - ')}`, {
    code: 'BAD_CLOUD_PUSH',
    exit: 'usage',
    suggestions: ['shien cloud push --help shows every flag and where the API key comes from.'],
  })
}
