import {existsSync} from 'node:fs'

import {formatBytes} from '../box/format-info.js'
import {ShienError} from '../errors.js'
import type {StorageSpace} from '../protocol/blade-steps.js'
import {keptPaths} from './kept-box.js'
import type {PushPlan} from './plan.js'
import {vagrantVmDisks, type VmDisks} from './vm-disks.js'

/**
 * Whether the blade has room for the VM that `vagrant package` is about to export, checked
 * before it shuts the VM down: the VM's disk files are what the box holds at most and what its
 * image on the blade needs at least. Only when the push packages the VM and sends it whole: a
 * named or kept box is measured by the blade as soon as the upload is prepared (BLADE_DISK_FULL
 * then too), and a delta needs only its changed blocks. Returns what was found, for a note.
 */
export function checkRoomBeforePackage(plan: PushPlan, space: StorageSpace | undefined, env: NodeJS.ProcessEnv = process.env): VmDisks | undefined {
  if (plan.boxPath || !plan.keepDir || plan.base.kind === 'base') return undefined
  if (!plan.repackage && existsSync(keptPaths(plan.keepDir, plan.name).box)) return undefined
  const disks = vagrantVmDisks(plan.projectDir, {env, home: env.HOME})
  if (!disks.known || !space) return disks
  if (space.freeBytes >= disks.bytes + space.reserveBytes) return disks
  const why = space.freeBytes < disks.bytes ? '' : `, and ${formatBytes(space.reserveBytes)} must stay free for everyone's VMs`
  throw new ShienError(
    `Not enough space on ${plan.target.alias} for this VM: its disks hold ${formatBytes(disks.bytes)} (${disks.provider}, ${disks.files.length} file${disks.files.length === 1 ? '' : 's'}), and the blade has ${formatBytes(space.freeBytes)} free for you${why}. Nothing was packaged; the VM was not shut down.`,
    {
      code: 'BLADE_DISK_FULL',
      exit: 'remote',
      suggestions: [
        'Free space in your folder on the blade (boxes left in incoming/ by pushes that did not finish, images of slots you no longer use), or ask an admin for more space.',
        'Or make the VM smaller first (remove what it no longer needs, then zero its free space), and push again.',
      ],
    },
  )
}
