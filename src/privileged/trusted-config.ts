import {lstatSync} from 'node:fs'
import {isAbsolute} from 'node:path'
import {isIP} from 'node:net'

import {parseConfigFilter} from '../directory/ldap-directory.js'
import {configError} from '../errors.js'
import {loadBladeConfig, type BladeConfig, type Limits} from '../config/blade-config.js'
import {ACCOUNT_PATTERN, TEMPLATE_NAME} from '../names.js'

/**
 * Loads the blade configuration and refuses one that is missing, unreadable, not as the schema
 * says (config/blade-schema.ts), or that a non-root user could have written: it
 * decides which files ie-virsh and ie-docker, as root, touch. Values that end up in setfacl
 * or qemu arguments are checked too, since a comma or colon there would add options.
 */
export function loadTrustedConfig(path: string): BladeConfig {
  const info = (() => {
    try {
      return lstatSync(path)
    } catch {
      return undefined
    }
  })()
  if (info && (!info.isFile() || info.uid !== 0 || (info.mode & 0o022) !== 0)) {
    throw configInvalid(`${path} must be a file owned by root and writable only by root.`)
  }
  const config = loadBladeConfig(path, {missing: 'refuse'})
  if (!isAbsolute(config.storageRoot)) throw configInvalid(`storageRoot "${config.storageRoot}" is not an absolute path.`)
  if (isIP(config.listenAddress) === 0) throw configInvalid(`listenAddress "${config.listenAddress}" is not an IP address.`)
  if (!Number.isInteger(config.bladeMemoryMiB) || config.bladeMemoryMiB <= 0) throw configInvalid(`bladeMemoryMiB must be a positive whole number of MiB.`)
  for (const key of ['debugSocketDir', 'qemuStateDir', 'runDir'] as const) {
    if (!isAbsolute(config[key]) || config[key].split('/').includes('..')) throw configInvalid(`${key} "${config[key]}" is not an absolute path without "..".`)
  }
  if (!ACCOUNT_PATTERN.test(config.qemuUser)) throw configInvalid(`qemuUser "${config.qemuUser}" is not a user name.`)
  if (!['kvm', 'qemu', 'auto'].includes(config.domainType)) throw configInvalid(`domainType "${config.domainType}" is not kvm, qemu or auto.`)
  checkLimits('limits.default', config.limits.default, true)
  for (const [group, limits] of Object.entries(config.limits.groups)) checkLimits(`limits.groups.${group}`, limits, false)
  if (!TEMPLATE_NAME.test(config.defaultTemplate)) throw configInvalid(`defaultTemplate "${config.defaultTemplate}" is not a template name.`)
  if (config.ldap) checkLdap(config.ldap)
  checkPush(config.push ?? {})
  return config
}

function checkLimits(where: string, limits: Partial<Limits>, complete: boolean): void {
  const counts = [limits.vms, limits.vcpus, limits.memoryMiB]
  const countOk = (n: number | undefined) => (n === undefined ? !complete : Number.isInteger(n) && n > 0)
  if (!counts.every(countOk) || (limits.vms ?? 0) > 99) {
    throw configInvalid(`${where} needs positive whole numbers for vms, vcpus and memoryMiB (vms at most 99).`)
  }
  if (limits.debug !== undefined && typeof limits.debug !== 'boolean') throw configInvalid(`${where}.debug must be true or false.`)
  const templates = limits.templates ?? []
  if (!Array.isArray(templates) || !templates.every((t) => typeof t === 'string' && TEMPLATE_NAME.test(t))) {
    throw configInvalid(`${where}.templates must be a list of template names.`)
  }
}

function checkPush(push: NonNullable<BladeConfig['push']>): void {
  const whole = (n: unknown, min: number) => n === undefined || (Number.isInteger(n) && (n as number) >= min)
  if (!whole(push.concurrent, 1)) throw configInvalid('push.concurrent must be a whole number, at least 1.')
  // libguestfs silently falls back to its default (1280 MiB) below 256: that would lift the bound.
  if (!whole(push.applianceMemMiB, 256)) throw configInvalid('push.applianceMemMiB must be a whole number of MiB, at least 256.')
  if (!whole(push.maxHoldMinutes, 1)) throw configInvalid('push.maxHoldMinutes must be a whole number, at least 1.')
  if (!whole(push.keepIncomingDays, 1)) throw configInvalid('push.keepIncomingDays must be a whole number of days, at least 1.')
  if (push.reserveGiB !== undefined && !(typeof push.reserveGiB === 'number' && push.reserveGiB >= 0 && Number.isFinite(push.reserveGiB))) {
    throw configInvalid('push.reserveGiB must be a number of GiB, at least 0.')
  }
  if (push.appliance !== undefined && !(typeof push.appliance === 'string' && isAbsolute(push.appliance))) {
    throw configInvalid('push.appliance must be the absolute path of a fixed libguestfs appliance folder.')
  }
  if (push.convertCache !== undefined && !['none', 'writeback'].includes(push.convertCache)) throw configInvalid('push.convertCache must be "none" or "writeback".')
}

function checkLdap(ldap: NonNullable<BladeConfig['ldap']>): void {
  if (!/^ldaps?:\/\/[^/\s]+\/?$/.test(ldap.url ?? '')) throw configInvalid(`ldap.url "${ldap.url}" is not ldap://HOST:PORT or ldaps://HOST:PORT.`)
  for (const key of ['userBase', 'groupBase'] as const) {
    if (typeof ldap[key] !== 'string' || ldap[key].length === 0) throw configInvalid(`ldap.${key} is missing.`)
  }
  if (ldap.bindDn !== undefined && !(typeof ldap.bindPasswordFile === 'string' && isAbsolute(ldap.bindPasswordFile))) {
    throw configInvalid('ldap.bindDn needs ldap.bindPasswordFile, an absolute path to a file only root can read.')
  }
  for (const key of ['instructorGroups', 'studentGroups'] as const) {
    if (!Array.isArray(ldap[key]) || !ldap[key].every((g) => typeof g === 'string')) throw configInvalid(`ldap.${key} must be a list of group names.`)
  }
  if (!Number.isInteger(ldap.timeoutMs) || ldap.timeoutMs <= 0) throw configInvalid('ldap.timeoutMs must be a positive whole number.')
  parseConfigFilter('userFilter', ldap.userFilter)
  parseConfigFilter('groupFilter', ldap.groupFilter)
}

export function configInvalid(message: string): ReturnType<typeof configError> {
  return configError('CONFIG_INVALID', `The blade configuration is invalid: ${message}`, ['Ask an admin to fix /etc/shien/config.json.'])
}
