import {join} from 'node:path'

import {badInput} from '../errors.js'

/** Account names as LDAP and Unix use them here (e195701, k198584, teacher1). */
export const ACCOUNT_PATTERN = /^[a-z_][a-z0-9_-]{0,31}$/

/** Slots are two digits, 01..99; the caller's limit narrows them further. */
export const SLOT_PATTERN = /^(0[1-9]|[1-9][0-9])$/

export function checkAccount(account: string): string {
  if (!ACCOUNT_PATTERN.test(account)) throw badInput('BAD_ACCOUNT', `"${account}" is not a valid account name.`)
  return account
}

export function checkSlot(slot: string, maxSlots: number): string {
  const normalized = /^[0-9]$/.test(slot) ? `0${slot}` : slot
  if (!SLOT_PATTERN.test(normalized) || Number(normalized) > maxSlots) {
    throw badInput('BAD_SLOT', `Slot "${slot}" is not one of 01 to ${String(maxSlots).padStart(2, '0')}.`, [
      `Use --slot 01 to --slot ${String(maxSlots).padStart(2, '0')}.`,
    ])
  }
  return normalized
}

/** Where an account's files live under the storage root. */
export function userPaths(storageRoot: string, account: string) {
  const home = join(storageRoot, 'users', checkAccount(account))
  return {
    home,
    incoming: join(home, 'incoming'),
    images: join(home, 'images'),
    image: (slot: string) => join(home, 'images', `${slot}.qcow2`),
    record: (slot: string) => join(home, 'images', `${slot}.json`),
    lock: join(home, '.lock'),
  }
}

export function domainName(account: string, slot: string): string {
  return `${account}-${slot}`
}
