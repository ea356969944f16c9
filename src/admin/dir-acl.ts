import {ShienError} from '../errors.js'
import {firstErrorLine, runTool} from '../virsh/exec.js'
import type {OpenedPath} from '../virsh/safe-open.js'

/** An ACL entry such as `user:libvirt-qemu:--x` or `group:shien-admin:r-x`. */
export type AclEntry = `${'user' | 'group'}:${string}:${string}`

/**
 * The entries of `want` that the folder lacks or that its mask hides. The folder is read
 * through its open descriptor (fd 3), never by path, so a symlink swapped in cannot redirect it.
 */
export async function missingAcl(opened: OpenedPath, want: AclEntry[], o: {signal: AbortSignal}): Promise<AclEntry[]> {
  const r = await runTool('getfacl', ['--omit-header', '--absolute-names', '/dev/fd/3'], {fd3: opened.handle.fd, signal: o.signal, timeoutMs: 30_000})
  if (r.exitCode !== 0) throw aclFailed(opened.path, r.stderr)
  const have = r.stdout.split('\n').map((l) => l.trim())
  const mask = have.find((l) => l.startsWith('mask::'))?.slice(6) ?? 'rwx'
  return want.filter((entry) => {
    const perms = entry.slice(entry.lastIndexOf(':') + 1)
    const masked = [...perms].every((p, i) => p === '-' || mask[i] === p)
    return !(masked && have.includes(entry))
  })
}

/** The named-user entries of `users` that the folder has, whatever their permissions. */
export async function presentUsers(opened: OpenedPath, users: string[], o: {signal: AbortSignal}): Promise<string[]> {
  const r = await runTool('getfacl', ['--omit-header', '--absolute-names', '/dev/fd/3'], {fd3: opened.handle.fd, signal: o.signal, timeoutMs: 30_000})
  if (r.exitCode !== 0) throw aclFailed(opened.path, r.stderr)
  const have = r.stdout.split('\n').map((l) => l.trim())
  return users.filter((user) => have.some((l) => l.startsWith(`user:${user}:`)))
}

/** Removes the named-user entries of `users`. */
export async function removeUsers(opened: OpenedPath, users: string[], o: {signal: AbortSignal}): Promise<void> {
  const r = await runTool('setfacl', ['-x', users.map((u) => `u:${u}`).join(','), '/dev/fd/3'], {fd3: opened.handle.fd, signal: o.signal, timeoutMs: 30_000})
  if (r.exitCode !== 0) throw aclFailed(opened.path, r.stderr)
}

/** Adds the entries; setfacl recomputes the mask so that they take effect. */
export async function addAcl(opened: OpenedPath, entries: AclEntry[], o: {signal: AbortSignal}): Promise<void> {
  const r = await runTool('setfacl', ['-m', entries.join(','), '/dev/fd/3'], {fd3: opened.handle.fd, signal: o.signal, timeoutMs: 30_000})
  if (r.exitCode !== 0) throw aclFailed(opened.path, r.stderr)
}

function aclFailed(path: string, stderr: string): ShienError {
  return new ShienError(`Cannot read or set the ACL of ${path}: ${firstErrorLine(stderr)}.`, {
    code: 'ACL_FAILED',
    exit: 'remote',
    suggestions: ['The storage must be mounted with POSIX ACL support (GFS2: mount -o acl).'],
  })
}
