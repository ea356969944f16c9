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
    /** A UEFI VM's own variable store (ie-virsh makes it at define, as the account). */
    nvram: (slot: string) => join(home, 'images', `${slot}.vars.fd`),
    lock: join(home, '.lock'),
    /** Block manifests the account's pushes computed for bases published without one (docs/delta.md). */
    manifestCache: join(home, 'cache', 'manifests'),
  }
}

/** The published bases of a storage root: `<root>/boxes/<org>/<name>/<version>/` (docs/instructors.md). */
export function boxesPaths(storageRoot: string) {
  const root = join(storageRoot, 'boxes')
  return {
    root,
    versionDir: (box: string, version: string) => join(root, ...box.split('/'), version),
  }
}

/** The files of a published version that delta pushes use. */
export const BASE_IMAGE = 'libvirt.qcow2'
export const BASE_MANIFEST = 'libvirt.manifest'

export function domainName(account: string, slot: string): string {
  return `${account}-${slot}`
}
