import {posix} from 'node:path'

import {ShienError} from '../../errors.js'
import {ACCOUNT_PATTERN} from '../../names.js'
import {backingNameOf} from '../../qemu-img/qcow2-backing.js'
import type {PublishPlan} from './plan.js'
import type {PublishTarget} from './target.js'

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
 * `boxes`). Only headers are read, with the publisher's own rights and without following links:
 * folders the publisher may not read are listed as unchecked, never guessed about.
 */
export async function usersOfBase(target: PublishTarget, plan: PublishPlan): Promise<{uses: BaseUse[]; unchecked: string[]}> {
  const root = plan.destination.root
  const uses: BaseUse[] = []
  const unchecked: string[] = []
  if (posix.basename(root) !== 'boxes') return {uses, unchecked}
  const usersDir = posix.join(posix.dirname(root), 'users')
  const [org, box] = plan.name.split('/')
  // Matched by the end of the name: the blade may mount the storage elsewhere than the publisher.
  const suffix = `/boxes/${org}/${box}/${plan.version}/libvirt.qcow2`
  for (const account of ((await target.readDir(usersDir)) ?? []).filter((a) => ACCOUNT_PATTERN.test(a)).sort()) {
    const imagesDir = posix.join(usersDir, account, 'images')
    const names = await target.readDir(imagesDir).catch(() => null)
    if (names === null) {
      unchecked.push(account)
      continue
    }
    for (const name of (names ?? []).sort()) {
      const match = IMAGE_NAME.exec(name)
      if (!match) continue
      const path = posix.join(imagesDir, name)
      let backing: string | undefined
      try {
        const head = await target.readHead(path, HEAD_BYTES)
        backing = head && backingNameOf(head)
      } catch {
        unchecked.push(`${account}/images/${name}`)
        continue
      }
      if (backing !== undefined && (backing === plan.layout.base || backing.endsWith(suffix))) {
        uses.push({account, slot: `${match[1]}${match[2] ?? ''}`, path})
      }
    }
  }
  return {uses, unchecked}
}

/** `--force` over a base that students' images are overlays of would change their disks. */
export function baseInUse(plan: PublishPlan, uses: BaseUse[]): ShienError {
  const list = uses.map((u) => `${u.account} ${u.slot}`).join(', ')
  return new ShienError(`${plan.name} ${plan.version} cannot be replaced: students' images are overlays of its base ${plan.layout.base} (${list}).`, {
    code: 'BASE_IN_USE', exit: 'refused',
    suggestions: ['Publish a new version instead: those images depend on the old base byte for byte.'],
  })
}
