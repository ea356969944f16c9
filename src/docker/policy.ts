import {ShienError} from '../errors.js'
import type {ContainerLimits} from '../config/blade-config.js'
import type {RunRequest} from '../protocol/ie-docker-run.js'

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
 * The user namespace and user a container runs in: always the owner's own uid and gid.
 *
 * The container gets a user namespace with one uid and one gid: 0 inside is the owner outside
 * (`--uidmap 0:UID:1`). So the process that is root in the container is the student on the blade,
 * never root, and what it writes into a volume is written as the student. One id, and at 0: on
 * podman 4.3 with the kernel's idmapped overlay layers, a map with more than one range, or without
 * container uid 0, cannot mount the image (measured: "permission denied" from overlayfs), and a
 * range of other host uids would not own the student's files. Images whose files belong to other
 * uids see them as nobody.
 *
 * `--user` may only name the owner, by number (names would be resolved in the student's own
 * image, where anything can map to 0); root in any spelling (0, 00, 0000:0000, 0:5, 5:0) and other
 * numbers are refused.
 */
export function userArgs(req: Pick<RunRequest, 'user'>, owner: {uid: number; gid: number}): string[] {
  if (owner.uid === 0 || owner.gid === 0) {
    throw new ShienError('ie-docker does not run containers for root (uid or gid 0).', {
      code: 'FLAG_REFUSED',
      exit: 'refused',
      suggestions: ['Run ie-docker through sudo from a student or admin account.'],
    })
  }
  if (req.user !== undefined) checkUser(req.user, owner)
  return ['--uidmap', `0:${owner.uid}:1`, '--gidmap', `0:${owner.gid}:1`, '--user', '0:0']
}

function checkUser(raw: string, owner: {uid: number; gid: number}): void {
  const own = `${owner.uid}:${owner.gid}`
  const refuse = (why: string) =>
    new ShienError(`--user ${raw} is not allowed: ${why}.`, {
      code: 'FLAG_REFUSED',
      exit: 'refused',
      suggestions: [`Leave --user out: a container runs as you (${own} on the blade, shown as 0 inside its own user namespace).`],
    })
  const m = /^([0-9]{1,10})(?::([0-9]{1,10}))?$/.exec(raw)
  if (m === null) throw refuse('give a numeric uid (names are resolved inside the image, where any name can be root)')
  const uid = Number(m[1])
  const gid = m[2] === undefined ? undefined : Number(m[2])
  if (uid === 0 || gid === 0) throw refuse('containers never run as root on this blade')
  if (uid !== owner.uid || (gid !== undefined && gid !== owner.gid)) throw refuse(`a container runs as its owner, ${own}`)
}
