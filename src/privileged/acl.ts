import {ShienError} from '../errors.js'
import {firstErrorLine, runTool} from '../process/run.js'
import type {OpenedPath} from './safe-open.js'

/** An ACL entry such as `user:1001:--x` or `group:shien-admin:r-x`. */
export type AclEntry = `${'user' | 'group'}:${string}:${string}`

/**
 * POSIX ACLs of files and folders that were opened (and verified) first: getfacl and setfacl
 * get the descriptor as their fd 3 and the name /dev/fd/3, so they act on the very file that was
 * checked. By path, a student could swap in a symlink to /etc/shadow between the check and the
 * setfacl, and setfacl follows symlinks.
 */
async function facl(tool: 'getfacl' | 'setfacl', args: string[], opened: OpenedPath, signal?: AbortSignal): Promise<string> {
  const r = await runTool(tool, [...args, '/dev/fd/3'], {fd3: opened.handle.fd, signal, timeoutMs: 30_000})
  if (r.exitCode !== 0) {
    throw new ShienError(`Cannot read or set the ACL of ${opened.path}: ${firstErrorLine(r.stderr)}.`, {
      code: 'ACL_FAILED',
      exit: 'remote',
      suggestions: ['The storage must be mounted with POSIX ACL support (GFS2: mount -o acl).'],
    })
  }
  return r.stdout
}

async function entriesOf(opened: OpenedPath, signal: AbortSignal): Promise<string[]> {
  return (await facl('getfacl', ['--omit-header', '--absolute-names'], opened, signal)).split('\n').map((l) => l.trim())
}

/** One access ACL entry with numeric ids: `id` is absent for the owner (`user::`), owning group, mask and others. */
export interface AclGrant {
  tag: 'user' | 'group' | 'mask' | 'other'
  id?: number
  /** As getfacl prints them, e.g. `rw-`; what the mask hides is not taken off. */
  perms: string
}

/**
 * The access ACL of an opened file or folder, ids as numbers (`getfacl --numeric`), so they
 * compare with a uid and gids without a name lookup. A file without an extended ACL gives the
 * three entries its mode stands for. Default entries (a folder's, for files made in it) are left out.
 */
export async function accessAcl(opened: OpenedPath, o: {signal?: AbortSignal}): Promise<AclGrant[]> {
  const text = await facl('getfacl', ['--omit-header', '--absolute-names', '--numeric'], opened, o.signal)
  return text.split('\n').flatMap((line): AclGrant[] => {
    // `user:1001:rwx\t#effective:r--`: the comment restates what the mask entry says.
    const m = /^(user|group|mask|other):(\d*):([r-][w-][x-])(?:\s|$)/.exec(line.trim())
    if (!m) return []
    return [{tag: m[1] as AclGrant['tag'], ...(m[2] === '' ? {} : {id: Number(m[2])}), perms: m[3]}]
  })
}

/** The entries of `want` that the file lacks or that its mask hides. */
export async function missingAcl(opened: OpenedPath, want: AclEntry[], o: {signal: AbortSignal}): Promise<AclEntry[]> {
  const have = await entriesOf(opened, o.signal)
  const mask = have.find((l) => l.startsWith('mask::'))?.slice(6) ?? 'rwx'
  return want.filter((entry) => {
    const perms = entry.slice(entry.lastIndexOf(':') + 1)
    const masked = [...perms].every((p, i) => p === '-' || mask[i] === p)
    return !(masked && have.includes(entry))
  })
}

/** The named-user entries of `users` that the file has, whatever their permissions. */
export async function presentUsers(opened: OpenedPath, users: string[], o: {signal: AbortSignal}): Promise<string[]> {
  const have = await entriesOf(opened, o.signal)
  return users.filter((user) => have.some((l) => l.startsWith(`user:${user}:`)))
}

/** Removes the named-user entries of `users`. */
export async function removeUsers(opened: OpenedPath, users: string[], o: {signal: AbortSignal}): Promise<void> {
  await facl('setfacl', ['-x', users.map((u) => `u:${u}`).join(',')], opened, o.signal)
}

/** Adds the entries; setfacl recomputes the mask so that they take effect. */
export async function addAcl(opened: OpenedPath, entries: AclEntry[], o: {signal: AbortSignal}): Promise<void> {
  await facl('setfacl', ['-m', entries.join(',')], opened, o.signal)
}
