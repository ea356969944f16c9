import {posix} from 'node:path'

import {ShienError} from '../../errors.js'
import {ACCOUNT_PATTERN} from '../../names.js'
import {backingNameOf} from '../../qemu-img/qcow2-backing.js'
import type {PublishPlan} from './plan.js'
import type {PublishTarget} from './target.js'

/** The published base looked for (one architecture's), of a publish's or an unpublish's version. */
export type BaseOwner = Pick<PublishPlan, 'name' | 'version'> & {destination: {root: string}; base: string}

/** A student's image that is a qcow2 overlay of a published base. */
export interface BaseUse {
  account: string
  /** The slot, or the slot's staged (`.01.new`) or kept (`.01.old`) image. */
  slot: string
  path: string
}

// Installed, staged and kept images of a slot (src/blade/slot-files.ts).
const IMAGE_NAME = /^\.?([0-9]{2})(\.new|\.old)?\.qcow2$/
// A qcow2 header and its backing name fit well within this.
const HEAD_BYTES = 64 * 1024

/**
 * The students' images on the destination whose backing file is this version's base, read
 * from their qcow2 headers (`<root>/users/<account>/images/`, beside a `--to` folder named
 * `boxes`). Only headers are read, with the publisher's own rights and without following links
 * below `users/` (a student's `images` swapped for a link to another's folder counts for no
 * one): folders the publisher may not read are listed as unchecked, never guessed about.
 */
export async function usersOfBase(target: PublishTarget, plan: BaseOwner): Promise<{uses: BaseUse[]; unchecked: string[]}> {
  const root = plan.destination.root
  const uses: BaseUse[] = []
  const unchecked: string[] = []
  if (posix.basename(root) !== 'boxes') return {uses, unchecked}
  const usersDir = posix.join(posix.dirname(root), 'users')
  const [org, box] = plan.name.split('/')
  // Matched by the end of the name: the blade may mount the storage elsewhere than the publisher.
  const suffix = `/boxes/${org}/${box}/${plan.version}/${posix.basename(plan.base)}`
  const accounts = await target.readDir(usersDir).catch(() => null)
  // Not even the accounts can be listed: none of their images was checked.
  if (accounts === null) return {uses, unchecked: [usersDir]}
  for (const account of (accounts ?? []).filter((a) => ACCOUNT_PATTERN.test(a)).sort()) {
    const imagesDir = posix.join(usersDir, account, 'images')
    const heads = await target.readHeads(imagesDir, usersDir, IMAGE_NAME, HEAD_BYTES).catch(() => null)
    if (heads === null) {
      unchecked.push(account)
      continue
    }
    for (const {name, head, error} of (heads ?? []).sort((a, b) => a.name.localeCompare(b.name))) {
      let backing: string | undefined
      try {
        if (error !== undefined) throw error
        backing = head && backingNameOf(head)
      } catch {
        unchecked.push(`${account}/images/${name}`)
        continue
      }
      if (backing !== undefined && (backing === plan.base || backing.endsWith(suffix))) {
        const match = IMAGE_NAME.exec(name)!
        uses.push({account, slot: `${match[1]}${match[2] ?? ''}`, path: posix.join(imagesDir, name)})
      }
    }
  }
  return {uses, unchecked}
}

/** Replacing (`--force`) or removing a base that students' images are overlays of would break their disks. */
export function baseInUse(plan: BaseOwner, uses: BaseUse[], change: 'replaced' | 'removed'): ShienError {
  const list = uses.map((u) => `${u.account} ${u.slot}`).join(', ')
  return new ShienError(`${plan.name} ${plan.version} cannot be ${change}: students' images are overlays of its base ${plan.base} (${list}).`, {
    code: 'BASE_IN_USE', exit: 'refused',
    suggestions: change === 'replaced'
      ? ['Publish a new version instead: those images depend on the old base byte for byte.']
      : ['Keep the version until those images are gone (the students push again from a newer version, or remove the VMs): they read the base on every boot.'],
  })
}

/**
 * Removing a base is refused while some images could not be read: an overlay among them would
 * lose its disk, and nothing could bring it back.
 */
export function baseUsersUnchecked(plan: BaseOwner, unchecked: string[]): ShienError {
  return new ShienError(`${plan.name} ${plan.version} was not removed: cannot tell whether these students' images are overlays of its base ${plan.base} (no read access): ${listSome(unchecked)}.`, {
    code: 'BASE_USERS_UNCHECKED', exit: 'refused',
    suggestions: ['Run it where every image can be read: as root on the blade (e.g. sudo shien box unpublish ... --to /gfs2/shien/boxes), or ask an admin to.'],
  })
}

/** A blade has dozens of accounts: name the first few and count the rest. */
function listSome(items: string[], shown = 10): string {
  const more = items.length - shown
  return more > 0 ? `${items.slice(0, shown).join(', ')} and ${more} more` : items.join(', ')
}
