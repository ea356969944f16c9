import {ShienError} from '../errors.js'
import {firstErrorLine, runTool} from './exec.js'
import type {OpenedPath} from './safe-open.js'

export type AclPerms = 'rw-' | 'r--' | '--x'

/**
 * Adds one ACL entry for `user` to an already opened (and verified) file or folder. setfacl
 * gets the descriptor as its fd 3 and the name /dev/fd/3, so the entry lands on the very file
 * that was checked: by path, a student could swap in a symlink to /etc/shadow between the
 * check and the setfacl, and setfacl follows symlinks.
 */
export async function grantAcl(opened: OpenedPath, user: string, perms: AclPerms, o: {signal: AbortSignal}): Promise<void> {
  const r = await runTool('setfacl', ['-m', `u:${user}:${perms}`, '/dev/fd/3'], {
    fd3: opened.handle.fd,
    signal: o.signal,
    timeoutMs: 30_000,
  })
  if (r.exitCode !== 0) {
    throw new ShienError(`Cannot give ${user} access to ${opened.path}: ${firstErrorLine(r.stderr)}.`, {
      code: 'ACL_FAILED',
      exit: 'remote',
      suggestions: ['The storage must support POSIX ACLs; ask an admin to check the mount options.'],
    })
  }
}
