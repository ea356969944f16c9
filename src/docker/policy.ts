import {ShienError} from '../errors.js'
import type {ContainerLimits} from '../server/config.js'
import type {RunRequest} from './run-args.js'

const UNITS: Record<string, number> = {'': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3}

/** Bytes of a docker memory size (`512m`, `1g`, `65536`), or a usage error. */
export function parseMemory(raw: string): number {
  const m = /^([0-9]+)([bkmg]?)$/i.exec(raw)
  if (m === null || Number(m[1]) === 0) {
    throw new ShienError(`-m ${raw} is not a memory size (e.g. 256m or 1g).`, {code: 'USAGE', exit: 'usage'})
  }
  return Number(m[1]) * UNITS[m[2].toLowerCase()]
}

/**
 * The memory and CPU arguments a container runs with: the caller's own values when they fit
 * the account's limits, the limits themselves when the caller gave none; never more.
 */
export function resourceArgs(req: Pick<RunRequest, 'memory' | 'cpus'>, limits: ContainerLimits): string[] {
  const capBytes = limits.memoryMiB * 1024 ** 2
  const bytes = req.memory === undefined ? capBytes : parseMemory(req.memory)
  if (bytes > capBytes) throw overLimit(`-m ${req.memory}`, `${limits.memoryMiB}m`)
  const cpus = req.cpus === undefined ? limits.cpus : Number(req.cpus)
  if (req.cpus !== undefined && !(/^[0-9]+(\.[0-9]+)?$/.test(req.cpus) && cpus > 0)) {
    throw new ShienError(`--cpus ${req.cpus} is not a positive number.`, {code: 'USAGE', exit: 'usage'})
  }
  if (cpus > limits.cpus) throw overLimit(`--cpus ${req.cpus}`, String(limits.cpus))
  return ['--memory', `${bytes}b`, '--cpus', String(cpus)]
}

function overLimit(asked: string, limit: string): ShienError {
  return new ShienError(`${asked} is more than your limit of ${limit} per container.`, {
    code: 'OVER_LIMIT',
    exit: 'refused',
    suggestions: [`Ask for ${limit} or less, or leave the flag out to get your limit.`],
  })
}

/**
 * The user the container runs as. With volumes it is always the caller (their files are
 * written with their uid); otherwise the caller's choice, except root when the admin refuses it.
 */
export function userArgs(req: Pick<RunRequest, 'user' | 'volumes'>, caller: {uid: number; gid: number}, refuseRoot: boolean): string[] {
  const own = `${caller.uid}:${caller.gid}`
  if (req.volumes.length > 0) {
    if (req.user !== undefined && req.user !== own && req.user !== String(caller.uid)) {
      throw new ShienError(`--user ${req.user} cannot go with volumes: a container with your folders runs as you (${own}).`, {
        code: 'FLAG_REFUSED',
        exit: 'refused',
        suggestions: ['Leave --user out.'],
      })
    }
    return ['--user', own]
  }
  if (req.user === undefined) return []
  if (refuseRoot && /^(0|root)(:.*)?$/.test(req.user)) {
    throw new ShienError(`--user ${req.user} is not allowed: containers do not run as root on this blade.`, {
      code: 'FLAG_REFUSED',
      exit: 'refused',
      suggestions: ['Leave --user out, or give your own uid.'],
    })
  }
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,31})?$/.test(req.user)) {
    throw new ShienError(`--user ${req.user} is not a user (NAME, UID or UID:GID).`, {code: 'USAGE', exit: 'usage'})
  }
  return ['--user', req.user]
}
