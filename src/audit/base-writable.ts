/**
 * Whether the student who owns an image can change the published base it is an overlay of, and
 * with it the disk of every VM made on that base, other students' included: the base file, a
 * file behind it in its backing chain, or a folder from `<root>/boxes` down that a lookup of
 * either goes through (its entries can be renamed or replaced there), that they own (an owner
 * can chmod) or may write. The lookups are of the resolved file and of the name the image
 * before it holds, which qemu looks up again at every open: through a symlink, that name can
 * pass folders the resolved file does not. apply-delta refuses such a base when the overlay is
 * made (BASE_WRITABLE); this finds the bases made writable afterwards, and images made by hand.
 *
 * The audit runs as root, so access is worked out, not tried: the owner, the mode's group and
 * other bits, and the ACL's group and named entries under its mask, for the student's uid and
 * every group they are in. A sticky folder is not taken as a defence: it is still no way to
 * publish. Symlinks in a name are followed by hand (path-lookup.ts), never by the kernel; every
 * file and folder is then opened as the gate opens the chain (O_NOFOLLOW, and the kernel's name
 * for the descriptor must be the path), and its stat and ACL read through the descriptor. A
 * symlink met there was planted since the gate ran: the check fails, and so does the image's audit.
 */
import type {Stats} from 'node:fs'
import {sep} from 'node:path'

import {ShienError} from '../errors.js'
import {accessAcl, type AclGrant} from '../privileged/acl.js'
import {getentGroups} from '../privileged/caller.js'
import {openExact} from '../privileged/safe-open.js'
import {lookupFolders} from './path-lookup.js'
import type {ImageRef} from './image-checks.js'
import type {Finding} from './types.js'

/** Whose write access is checked: a uid and every group it is in. */
export interface Writer {
  uid: number
  gids: number[]
  /** For messages: the account, or `uid N`. */
  name: string
}

export interface WritableBaseScope {
  /** The image's owner; without one there is nobody to check for. */
  uid?: number
  boxesDir: string
  signal?: AbortSignal
}

type Part = 'base' | 'folder' | 'backing file'

/** One way the writer can change a file or folder of the base. */
interface Grant {
  part: Part
  path: string
  how: string
  /** The command that takes it away; none for a file outside `<root>/boxes` (the base must stand alone). */
  undo?: string
}

/** How a writer may write a file: `acl` when an ACL entry grants it (setfacl undoes it), not the owner or mode. */
export interface WriteGrant {
  how: string
  acl: boolean
}

/** The backing chain as gateImage vetted it: the files resolved, and each as named (see GateOutcome). */
export interface VettedChain {
  chain: string[]
  names: string[]
}

/**
 * A `base-writable` finding when the image's vetted chain reaches a published base its owner
 * can change. Throws (AUDIT_BASE_UNCHECKED) when that cannot be told.
 */
export async function baseWritableFinding(ref: ImageRef & {image: string}, vetted: VettedChain, scope: WritableBaseScope): Promise<Finding | undefined> {
  const first = vetted.chain.findIndex((p) => isInside(p, scope.boxesDir))
  if (first < 0 || scope.uid === undefined) return undefined
  const base = vetted.chain[first]
  const name = ref.account ?? `uid ${scope.uid}`
  let grants: Grant[]
  try {
    const writer = {uid: scope.uid, gids: await getentGroups(scope.uid, {signal: scope.signal}), name}
    grants = await chainGrants({chain: vetted.chain.slice(first), names: vetted.names.slice(first)}, writer, scope)
  } catch (error) {
    throw new ShienError(`Cannot tell whether ${name} can change the published base ${base}: ${error instanceof Error ? error.message : String(error)}`, {
      code: 'AUDIT_BASE_UNCHECKED', cause: error,
    })
  }
  if (grants.length === 0) return undefined
  return {
    ...ref, code: 'base-writable', severity: 'high',
    message: `${name} can change the published base ${base}, and with it the disk of every VM made on it, other students' too: ${grants.map((g) => `the ${g.part} ${g.path} ${g.how}`).join('; ')}.`,
    fix: fixOf(grants),
    detail: {base, grants: grants.map((g) => `${g.path}: ${g.how}`)},
  }
}

/**
 * The grants on the published base and every file behind it, and on the folders from
 * `<root>/boxes` down that a lookup of each goes through: of the file itself, and of the name
 * the image before it holds, which may lead there through a symlink in another folder.
 */
async function chainGrants(vetted: VettedChain, writer: Writer, scope: WritableBaseScope): Promise<Grant[]> {
  const grants: Grant[] = []
  const seen = new Set<string>()
  const inBoxes = (dir: string) => dir === scope.boxesDir || isInside(dir, scope.boxesDir)
  for (const [i, file] of vetted.chain.entries()) {
    const folders = [...(await lookupFolders(vetted.names[i])), ...(await lookupFolders(file))].filter(inBoxes)
    for (const dir of folders) {
      if (seen.has(dir)) continue
      seen.add(dir)
      grants.push(...(await grantsOn(dir, 'folder', writer, scope.signal)))
    }
    // Behind a published base may sit a file in the student's own folder: the gate allows it there.
    const published = isInside(file, scope.boxesDir)
    const found = await grantsOn(file, i === 0 ? 'base' : 'backing file', writer, scope.signal)
    // Making the student's own file read-only would not do: the base must stand alone.
    grants.push(...(published ? found : found.map((g) => ({...g, undo: undefined}))))
  }
  return grants
}

async function grantsOn(path: string, part: Part, writer: Writer, signal?: AbortSignal): Promise<Grant[]> {
  const opened = await openExact(path, {code: 'BASE', directory: part === 'folder'})
  try {
    const acl = await accessAcl(opened, {signal})
    return writeGrants(opened.stat, acl, writer).map((g) => ({part, path, how: g.how, undo: undoOf(g, part, path)}))
  } finally {
    await opened.handle.close()
  }
}

/** How `writer` may write a file of this stat and ACL (POSIX.1e: named entries and the owning group are under the mask). */
export function writeGrants(stat: Pick<Stats, 'uid' | 'gid' | 'mode'>, acl: AclGrant[], writer: Writer): WriteGrant[] {
  const mode = (stat.mode & 0o7777).toString(8).padStart(4, '0')
  const mask = acl.find((e) => e.tag === 'mask')?.perms ?? 'rwx'
  const writes = (e: AclGrant) => e.perms[1] === 'w' && mask[1] === 'w'
  const out: WriteGrant[] = []
  if (stat.uid === writer.uid) out.push({how: `is owned by ${writer.name} (uid ${writer.uid})`, acl: false})
  if ((stat.mode & 0o002) !== 0) out.push({how: `has mode ${mode}: everyone may write it`, acl: false})
  const owningGroup = acl.find((e) => e.tag === 'group' && e.id === undefined)
  if (owningGroup && writes(owningGroup) && writer.gids.includes(stat.gid)) {
    out.push({how: `has mode ${mode} and group ${stat.gid}, which ${writer.name} is in: the group may write it`, acl: false})
  }
  for (const e of acl.filter((e) => e.id !== undefined && writes(e))) {
    if (e.tag === 'user' && e.id === writer.uid) out.push({how: `has the ACL entry user:${e.id}:${e.perms}, for ${writer.name}`, acl: true})
    if (e.tag === 'group' && writer.gids.includes(e.id!)) out.push({how: `has the ACL entry group:${e.id}:${e.perms}, a group ${writer.name} is in`, acl: true})
  }
  return out
}

function undoOf(g: WriteGrant, part: Part, path: string): string {
  if (g.acl) return `setfacl -b ${path}`
  return `chown root:root ${path} && chmod ${part === 'folder' ? '0755' : '0444'} ${path}`
}

function fixOf(grants: Grant[]): string {
  const steps = [...new Set(grants.flatMap((g) => (g.undo ? [g.undo] : [])))]
  const first = steps.length > 0 ? `Make it read-only to students: ${steps.join('; ')}. ` : ''
  return `${first}It may have been changed already: publish the box again as a new version (shien box publish writes a standalone base, 0444 in root-owned folders), and have its students push again.`
}

function isInside(path: string, dir: string): boolean {
  return path.startsWith(dir + sep)
}
