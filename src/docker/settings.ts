import {isAbsolute} from 'node:path'
import {isIP} from 'node:net'

import type {BladeConfig, ContainerLimits, DockerSettings} from '../config/blade-config.js'
import {configInvalid} from '../privileged/trusted-config.js'

/**
 * An account's container limits: the shared ones (config/blade-config.ts) and ie-docker's own, read
 * from the same `docker.limits` section.
 */
export interface DockerLimits extends ContainerLimits {
  /** Host ports one container may hold (its -p ports and the image's EXPOSE ports together). */
  portsPerContainer: number
  /** Host ports all the account's containers may hold together. */
  portsPerAccount: number
  /** How many images (distinct tagged ones) an account may have. */
  images: number
  /** What an account's images may take together, in MiB (each image's full size, dangling ones too). */
  imageStorageMiB: number
}

/** The `docker` section as ie-docker reads it: DockerSettings with ie-docker's own limits. */
export type DockerConfig = Omit<DockerSettings, 'limits'> & {limits: {default: DockerLimits; groups: Record<string, Partial<DockerLimits>>}}

const LIMIT_KEYS = ['containers', 'memoryMiB', 'cpus', 'portsPerContainer', 'portsPerAccount', 'images', 'imageStorageMiB'] as const
/** Limits that count things: whole numbers. */
const WHOLE_KEYS = new Set<string>(['containers', 'portsPerContainer', 'portsPerAccount', 'images'])

/** ie-docker's defaults: the thesis' 8 containers per account, podman, a port pool of its own. */
export const DEFAULT_DOCKER: DockerConfig = {
  engine: 'podman',
  enginePath: '/usr/bin/podman',
  engineArgs: [],
  runArgs: [],
  buildArgs: [],
  buildContextMiB: 512,
  buildTimeoutMinutes: 30,
  portPool: {from: 24000, to: 24999},
  listenAddress: '127.0.0.1',
  images: [],
  proxy: {domain: 'ie.localhost', includeFile: '/etc/nginx/shien/containers.conf', reload: []},
  limits: {default: {containers: 8, memoryMiB: 512, cpus: 1, portsPerContainer: 4, portsPerAccount: 16, images: 10, imageStorageMiB: 2048}, groups: {}},
}

/**
 * The blade configuration's `docker` section with defaults filled in, checked: the config is
 * root's (loadTrustedConfig), but a typo must not turn into an argument the engine reads
 * as something else.
 */
export function dockerSettings(config: BladeConfig): DockerConfig {
  const given = (config.docker ?? {}) as Partial<DockerConfig>
  const d = DEFAULT_DOCKER
  const engine = given.engine ?? d.engine
  const s: DockerConfig = {
    ...d,
    ...given,
    engine,
    enginePath: given.enginePath ?? `/usr/bin/${engine}`,
    proxy: {...d.proxy, ...given.proxy},
    limits: {default: {...d.limits.default, ...given.limits?.default}, groups: given.limits?.groups ?? {}},
  }
  check(s)
  return s
}

function check(s: DockerConfig): void {
  if (s.engine !== 'docker' && s.engine !== 'podman') throw configInvalid(`docker.engine "${String(s.engine)}" is not docker or podman.`)
  if (!isAbsolute(s.enginePath)) throw configInvalid(`docker.enginePath "${s.enginePath}" is not an absolute path.`)
  for (const key of ['buildContextMiB', 'buildTimeoutMinutes'] as const) {
    if (typeof s[key] !== 'number' || !(s[key] > 0) || !Number.isFinite(s[key])) throw configInvalid(`docker.${key} must be a positive number.`)
  }
  for (const key of ['engineArgs', 'runArgs', 'buildArgs', 'images'] as const) {
    if (!Array.isArray(s[key]) || !s[key].every((a) => typeof a === 'string')) throw configInvalid(`docker.${key} must be a list of strings.`)
  }
  if (isIP(s.listenAddress) === 0) throw configInvalid(`docker.listenAddress "${s.listenAddress}" is not an IP address.`)
  // The domain goes into nginx's server_name: letters, digits, dots and hyphens only.
  if (!/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(s.proxy.domain)) throw configInvalid(`docker.proxy.domain "${s.proxy.domain}" is not a domain name.`)
  if (!isAbsolute(s.proxy.includeFile)) throw configInvalid(`docker.proxy.includeFile "${s.proxy.includeFile}" is not an absolute path.`)
  if (!Array.isArray(s.proxy.reload) || !s.proxy.reload.every((a) => typeof a === 'string')) throw configInvalid('docker.proxy.reload must be an argv list.')
  checkLimits('docker.limits.default', s.limits.default, true)
  for (const [group, limits] of Object.entries(s.limits.groups)) checkLimits(`docker.limits.groups.${group}`, limits, false)
}

function checkLimits(where: string, l: Partial<DockerLimits>, complete: boolean): void {
  for (const key of LIMIT_KEYS) {
    const n = l[key]
    if (n === undefined && !complete) continue
    if (typeof n !== 'number' || !(n > 0) || !Number.isFinite(n) || (WHOLE_KEYS.has(key) && !Number.isInteger(n))) {
      throw configInvalid(`${where}.${key} must be a positive ${WHOLE_KEYS.has(key) ? 'whole ' : ''}number.`)
    }
  }
}

/**
 * An account's container limits: for each field the most generous value among its groups
 * mapped in docker.limits.groups, starting from the defaults (as limitsFor does for VMs).
 */
export function containerLimitsFor(groups: readonly string[], s: Pick<DockerConfig, 'limits'>): DockerLimits {
  const result = {...s.limits.default}
  for (const group of groups) {
    const mapped = s.limits.groups[group]
    if (mapped === undefined) continue
    for (const key of LIMIT_KEYS) result[key] = Math.max(result[key], mapped[key] ?? 0)
  }
  return result
}
