import {z} from 'zod'

import {configError} from '../errors.js'
import {checkConfig, readConfigJson} from './config-file.js'
import {bladeConfigSchema, ldapSchema, limitsSchema, pushSettingsSchema, portPoolSchema} from './blade-schema.js'

export {DEFAULT_APPLIANCE_MEM_MIB, HEAVY_STEP_MIB, defaultConcurrent} from './blade-schema.js'

/** Limits that apply to one account; LDAP groups map onto these (see the ie-virsh docs). */
export type Limits = z.output<typeof limitsSchema>

/** Where accounts, groups and roles come from; absent, admins are the Unix group `adminGroup`. */
export type LdapConfig = z.output<typeof ldapSchema>

export type PortPool = z.output<typeof portPoolSchema>

/**
 * The blade's configuration, `/etc/shien/config.json`, with every default filled in. Its keys,
 * types, defaults and meanings are in blade-schema.ts (and docs/config.md, made from it).
 */
export type BladeConfig = z.output<typeof bladeConfigSchema>

/** How the blade runs the heavy steps of pushes, defaults filled in (pushSettings). */
export type PushSettings = z.output<typeof pushSettingsSchema>

/** The space an upload must leave free on a storage of `sizeBytes` (push.reserveGiB). */
export function storageReserveBytes(settings: Pick<PushSettings, 'reserveGiB'>, sizeBytes: number): number {
  if (settings.reserveGiB !== undefined) return settings.reserveGiB * 2 ** 30
  return Math.min(20 * 2 ** 30, Math.floor(sizeBytes * 0.05))
}

/** The push settings with every default filled in. */
export function pushSettings(config: {push?: Partial<PushSettings>}): PushSettings {
  return pushSettingsSchema.parse(config.push ?? {})
}

/** Container limits of one account (ie-docker); groups map onto these like VM limits. */
export interface ContainerLimits {
  /** How many containers (running or not) an account may have. */
  containers: number
  /** The memory cap of each container (`-m`). */
  memoryMiB: number
  /** The CPU share of each container (`--cpus`). */
  cpus: number
}

/** ie-docker: the engine, its port pool and reverse proxy, and the container limits. */
export interface DockerSettings {
  /** `docker` or `podman` (any docker-compatible CLI). */
  engine: 'docker' | 'podman'
  /** Absolute path of the engine's CLI; default /usr/bin/<engine>. */
  enginePath: string
  /** Put before every engine subcommand (e.g. podman's `--runtime runc`). */
  engineArgs: string[]
  /** Added to every `run` by the admin (e.g. `--ulimit nofile=1024:1024`). */
  runArgs: string[]
  /** Added to every `build` by the admin (e.g. the same `--ulimit`s for its RUN steps). */
  buildArgs: string[]
  /** The most a build context (the folder `build` is given) may hold, in MiB. */
  buildContextMiB: number
  /** A build that runs longer is stopped, in minutes. */
  buildTimeoutMinutes: number
  /** Host ports published for containers' exposed ports. */
  portPool: PortPool
  /** The address published ports listen on. */
  listenAddress: string
  /** Images every account may run (admins pull or import them); accounts' own images come on top. */
  images: string[]
  proxy: {
    /** `<account>-<name>.<domain>` reaches a container's first published port. */
    domain: string
    /** The nginx include file ie-docker rewrites; the admin's nginx loads it. */
    includeFile: string
    /** Run after the include file changes (an argv, e.g. ["nginx", "-s", "reload"]); none when empty. */
    reload: string[]
  }
  limits: {default: ContainerLimits; groups: Record<string, Partial<ContainerLimits>>}
}

export const DEFAULT_LDAP: Omit<LdapConfig, 'url' | 'userBase' | 'groupBase' | 'bindDn' | 'bindPasswordFile'> = {
  userFilter: '(objectClass=posixAccount)',
  groupFilter: '(objectClass=posixGroup)',
  instructorGroups: [],
  studentGroups: [],
  timeoutMs: 5000,
}

export const DEFAULT_CONFIG_PATH = '/etc/shien/config.json'

/** Every default, as a blade with an empty `{}` config file runs. */
export const DEFAULT_BLADE_CONFIG: BladeConfig = bladeConfigSchema.parse({})

const FIX = (path: string) => [`Ask an admin to fix ${path} (docs/config.md lists every key; docs/ie-virsh.md how to install it).`]

/**
 * Reads the blade configuration and checks it against the schema; keys the file leaves out
 * take their defaults. A missing file means every default for the student-side steps and the
 * audit (as before); ie-virsh and ie-docker pass `missing: 'refuse'` (loadTrustedConfig). The path is a
 * parameter for tests only: the privileged commands always read the default path, never one
 * taken from the caller's environment.
 */
export function loadBladeConfig(path: string = DEFAULT_CONFIG_PATH, opts: {missing?: 'refuse' | 'defaults'} = {}): BladeConfig {
  const value = readConfigJson(path, FIX(path))
  if (value === undefined) {
    if (opts.missing !== 'refuse') return DEFAULT_BLADE_CONFIG
    throw configError('CONFIG_MISSING', `The blade configuration ${path} is missing: shien will not run a blade on guessed settings.`, [
      `Ask an admin to install ${path} (root's, mode 0644; "{}" takes every default; docs/config.md lists the keys).`,
    ])
  }
  return checkConfig(bladeConfigSchema, value, path, FIX(path))
}
