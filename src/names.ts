import {ShienError} from './errors.js'

/**
 * The names shien checks, one rule each, with one error wherever they are checked: accounts,
 * slots and the names boxes get on the blade. Side-effect free: every layer imports it.
 */

/** Account names as LDAP and Unix use them here (e195701, k198584, teacher1). */
export const ACCOUNT_PATTERN = /^[a-z_][a-z0-9_-]{0,31}$/

/** Slots are two digits, 01..99; the caller's limit narrows them further. */
export const SLOT_PATTERN = /^(0[1-9]|[1-9][0-9])$/

/** A domain template's name (`templates/<name>.xml`): no paths. */
export const TEMPLATE_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/

/** A box's name on the blade (incoming/<name>.box): no paths, no dot files, no `..`. */
export const BOX_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/

/** A catalog box name, as Vagrant Cloud names boxes: `org/name`; each part also becomes a folder. */
export const CATALOG_BOX_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}\/[a-z0-9][a-z0-9._-]{0,63}$/

const pad = (n: number) => String(n).padStart(2, '0')

export function checkAccount(account: string): string {
  if (!ACCOUNT_PATTERN.test(account)) {
    throw new ShienError(`"${account}" is not an account name.`, {code: 'BAD_ACCOUNT', exit: 'usage'})
  }
  return account
}

/**
 * A slot as typed: two digits, or one that is padded (the thesis wrote `ie-virsh start 1`).
 * `max` only shapes the message; limits are checked by whoever knows them.
 */
export function parseSlot(raw: string, max = 99): string {
  const slot = /^[1-9]$/.test(raw) ? `0${raw}` : raw
  if (!SLOT_PATTERN.test(slot)) {
    throw new ShienError(`"${raw}" is not a slot; slots are two digits, 01 to ${pad(max)}.`, {
      code: 'BAD_SLOT',
      exit: 'usage',
      suggestions: ['Example: --slot 01 (shien push), sudo ie-virsh start 01'],
    })
  }
  return slot
}

export function isBoxName(name: string): boolean {
  return BOX_NAME_PATTERN.test(name) && !name.includes('..')
}

export function checkBoxName(name: string): string {
  if (!isBoxName(name)) {
    throw new ShienError(`"${name}" cannot name a box on the blade: use letters, digits, ".", "_" and "-".`, {
      code: 'BAD_BOX_NAME',
      exit: 'usage',
    })
  }
  return name
}

/**
 * A catalog box name (`org/name`) as the blade is asked for it. Each part becomes a folder, and
 * the pattern keeps them plain names: no `/` inside, no leading dot, so never `.` or `..`.
 */
export function checkCatalogBox(name: string): string {
  if (!CATALOG_BOX_PATTERN.test(name)) {
    throw new ShienError(`"${name}" is not a catalog box name: ORG/NAME with lowercase letters, digits, ".", "_" and "-" (e.g. os101/debian12).`, {
      code: 'BAD_BOX_NAME',
      exit: 'usage',
    })
  }
  return name
}
