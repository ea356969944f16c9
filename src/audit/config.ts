/**
 * The `audit` section of the blade configuration (/etc/shien/config.json). Every field has a
 * default, so a blade without the section audits with the values below.
 */
import {readFile} from 'node:fs/promises'

import {badInput, ShienError} from '../errors.js'

export interface LiveAuditConfig {
  /** Guest accounts to try logging in as. */
  users: string[]
  /** TCP ports to look at on every running domain. */
  ports: number[]
  /** Open ports that are expected (SSH); other open ports are `live-open-port` findings. */
  allowedPorts: number[]
  /** Domains probed at once. */
  concurrency: number
  /** Password candidates tried per account over SSH (sshd delays every failure by seconds). */
  maxPasswordAttempts: number
  /** Everything one domain may take, connections and attempts included. */
  domainTimeoutMs: number
  connectTimeoutMs: number
  /** How long a forwarded port may stay silent before it counts as open (see port-probe.ts). */
  portGraceMs: number
}

export interface AuditConfig {
  /** Images audited at once: each one is an appliance (a qemu process with ~1 GiB of RAM). */
  concurrency: number
  /** Longest one image may take, appliance launch included. */
  imageTimeoutMs: number
  /** Passwords tried besides the built-in ones (vagrant, root, password, empty, the user name). */
  weakPasswords: string[]
  /** A root-readable file with more of them, one a line. */
  weakPasswordsFile?: string
  /** Published boxes read for host key comparison: the newest `max`, `perLaunch` per appliance. */
  boxes: {max: number; perLaunch: number}
  live: LiveAuditConfig
}

export const DEFAULT_AUDIT_CONFIG: AuditConfig = {
  concurrency: 2,
  imageTimeoutMs: 10 * 60_000,
  weakPasswords: [],
  boxes: {max: 32, perLaunch: 16},
  live: {
    users: ['vagrant', 'root'],
    ports: [21, 22, 23, 25, 80, 443, 2375, 3000, 3306, 5000, 5432, 5900, 6379, 8000, 8080, 8888, 9200, 27017],
    allowedPorts: [22],
    concurrency: 4,
    maxPasswordAttempts: 6,
    domainTimeoutMs: 120_000,
    connectTimeoutMs: 10_000,
    portGraceMs: 1500,
  },
}

/** The built-in weak passwords; the account's own name is added per account. */
export const BUILTIN_WEAK_PASSWORDS = ['vagrant', 'root', 'password', ''] as const

type Partialish = Partial<Omit<AuditConfig, 'live' | 'boxes'>> & {live?: Partial<LiveAuditConfig>; boxes?: Partial<AuditConfig['boxes']>}

/** Reads the `audit` section; a missing file means the defaults (as loadBladeConfig does). */
export async function loadAuditConfig(path: string): Promise<AuditConfig> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return DEFAULT_AUDIT_CONFIG
    throw new ShienError(`Cannot read the blade configuration ${path}.`, {code: 'CONFIG_UNREADABLE', cause: error})
  }
  let section: Partialish
  try {
    section = ((JSON.parse(text) as {audit?: Partialish}).audit ?? {})
  } catch (error) {
    throw new ShienError(`The blade configuration ${path} is not valid JSON.`, {code: 'CONFIG_INVALID', cause: error})
  }
  return checked({
    ...DEFAULT_AUDIT_CONFIG,
    ...section,
    boxes: {...DEFAULT_AUDIT_CONFIG.boxes, ...section.boxes},
    live: {...DEFAULT_AUDIT_CONFIG.live, ...section.live},
  }, path)
}

function checked(c: AuditConfig, path: string): AuditConfig {
  const bad = (field: string) => badInput('CONFIG_INVALID', `audit.${field} in ${path} is not valid.`)
  const count = (n: unknown, min: number) => Number.isInteger(n) && (n as number) >= min
  const ports = (xs: unknown) => Array.isArray(xs) && xs.every((p) => count(p, 1) && (p as number) <= 65535)
  if (!count(c.concurrency, 1)) throw bad('concurrency')
  if (!count(c.imageTimeoutMs, 1000)) throw bad('imageTimeoutMs')
  if (!Array.isArray(c.weakPasswords) || !c.weakPasswords.every((p) => typeof p === 'string')) throw bad('weakPasswords')
  if (!count(c.boxes.max, 0) || !count(c.boxes.perLaunch, 1)) throw bad('boxes')
  const l = c.live
  if (!Array.isArray(l.users) || !l.users.every((u) => /^[a-z_][a-z0-9_.-]{0,31}$/.test(u))) throw bad('live.users')
  if (!ports(l.ports) || !ports(l.allowedPorts)) throw bad('live.ports')
  if (!count(l.concurrency, 1) || !count(l.maxPasswordAttempts, 0)) throw bad('live.concurrency')
  if (!count(l.domainTimeoutMs, 1000) || !count(l.connectTimeoutMs, 100) || !count(l.portGraceMs, 0)) throw bad('live timeouts')
  return c
}

/**
 * The candidate list: built-ins, then the admin's (config, then file), without duplicates. The
 * file is read here, once per run, and never echoed: an admin's list may hold local passwords.
 */
export async function weakPasswordList(c: AuditConfig): Promise<{builtin: string[]; admin: string[]}> {
  const admin = [...c.weakPasswords]
  if (c.weakPasswordsFile) {
    const text = await readFile(c.weakPasswordsFile, 'utf8').catch((error: unknown) => {
      throw new ShienError(`Cannot read the weak password list ${c.weakPasswordsFile}.`, {code: 'CONFIG_UNREADABLE', cause: error})
    })
    admin.push(...text.split(/\r?\n/).filter((line) => line !== '' && !line.startsWith('#')))
  }
  const builtin: string[] = [...BUILTIN_WEAK_PASSWORDS]
  return {builtin, admin: [...new Set(admin)].filter((p) => !builtin.includes(p))}
}
