import {join} from 'node:path'

import {checkAccount} from '../names.js'

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
