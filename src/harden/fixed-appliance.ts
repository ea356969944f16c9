/**
 * A fixed libguestfs appliance (`libguestfs-make-fixed-appliance DIR`) that every student's
 * harden step boots, instead of the one libguestfs builds per user on first use (about 700 MB
 * in /var/tmp/.guestfs-<uid> for each student, and a slower first push). The appliance runs as
 * each student over their own image, so it must be root's alone: a file of it that a student
 * could change would run inside every other student's harden.
 */
import {lstat} from 'node:fs/promises'
import {join} from 'node:path'

import {ShienError} from '../errors.js'

const FILES = ['kernel', 'initrd', 'root']

/** Refuses an appliance folder (or a file of it) that is not root's, read-only to everyone else. */
export async function checkFixedAppliance(dir: string): Promise<void> {
  for (const path of [dir, ...FILES.map((f) => join(dir, f))]) {
    const stats = await lstat(path).catch(() => undefined)
    const kind = path === dir ? 'folder' : 'file'
    const problem =
      stats === undefined ? 'is missing'
        : path === dir ? (stats.isDirectory() ? undefined : 'is not a folder')
          : stats.isFile() ? undefined : 'is not a regular file'
    const unsafe = problem ?? (stats!.uid !== 0 ? 'is not owned by root' : (stats!.mode & 0o022) !== 0 ? 'is writable by others than root' : undefined)
    if (unsafe) {
      throw new ShienError(`The blade's libguestfs appliance ${kind} ${path} ${unsafe}.`, {
        code: 'APPLIANCE_UNSAFE', exit: 'remote',
        suggestions: [`Ask an admin to rebuild it as root: libguestfs-make-fixed-appliance ${dir} (push.appliance in /etc/shien/config.json).`],
      })
    }
  }
}
