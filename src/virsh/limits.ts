import {ShienError} from '../errors.js'
import type {BladeConfig, Limits} from '../config/blade-config.js'
import {parseSlot as parseSlotName, SLOT_PATTERN} from '../names.js'
import {domainName} from '../config/storage-layout.js'

/**
 * The limits of an account in `groups`: for each field the most generous value among the
 * groups mapped in `limits.groups`, starting from the defaults (a group can raise a limit,
 * never lower another group's). Templates add up, and the default template is always allowed.
 */
export function limitsFor(groups: readonly string[], config: BladeConfig): Limits {
  const result: Limits = {...config.limits.default, templates: [...config.limits.default.templates]}
  for (const group of groups) {
    const mapped = config.limits.groups[group]
    if (mapped === undefined) continue
    result.vms = Math.max(result.vms, mapped.vms ?? 0)
    result.vcpus = Math.max(result.vcpus, mapped.vcpus ?? 0)
    result.memoryMiB = Math.max(result.memoryMiB, mapped.memoryMiB ?? 0)
    result.debug = result.debug || mapped.debug === true
    result.templates.push(...(mapped.templates ?? []))
  }
  result.templates = [...new Set([config.defaultTemplate, ...result.templates])].sort()
  return result
}

const pad = (n: number) => String(n).padStart(2, '0')

/**
 * Checks a slot typed by the caller: two digits (a single digit is padded, as the thesis
 * wrote `ie-virsh start 1`), then within the caller's VM limit.
 */
export function parseSlot(raw: string, limits: Limits): string {
  const slot = parseSlotName(raw, limits.vms)
  if (Number(slot) > limits.vms) {
    throw new ShienError(`Slot ${slot} is beyond your limit of ${limits.vms} VMs (slots 01 to ${pad(limits.vms)}).`, {
      code: 'SLOT_LIMIT',
      exit: 'refused',
      suggestions: ['Use a free slot from "sudo ie-virsh list", or undefine one you no longer need.'],
    })
  }
  return slot
}

/**
 * The slot of a domain if it belongs to the account, else undefined. Both the prefix and the
 * slot pattern must match: account `e19` must not see `e19-5701-01`, nor `e19-01x`.
 */
export function slotOfDomain(account: string, name: string): string | undefined {
  const prefix = `${account}-`
  if (!name.startsWith(prefix)) return undefined
  const slot = name.slice(prefix.length)
  return SLOT_PATTERN.test(slot) && domainName(account, slot) === name ? slot : undefined
}
