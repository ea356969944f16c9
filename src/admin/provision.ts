import {mkdir, readlink} from 'node:fs/promises'
import {basename, join} from 'node:path'

import type {Directory, DirectoryAccount} from '../directory/directory.js'
import {ShienError} from '../errors.js'
import type {BladeConfig} from '../config/blade-config.js'
import {ACCOUNT_PATTERN} from '../names.js'
import {userPaths} from '../config/storage-layout.js'
import {openExact, type OpenedPath} from '../privileged/safe-open.js'
import {addAcl, missingAcl, presentUsers, removeUsers, type AclEntry} from '../privileged/acl.js'

/** What `shien admin provision` did, folder by folder. */
export interface ProvisionReport {
  groups: string[]
  accounts: string[]
  created: string[]
  fixed: {path: string; what: string[]}[]
  /** Folders that were already right and were left as they were. */
  unchanged: string[]
  /** Accounts or folders left alone because something is wrong that provision will not guess at. */
  problems: {account: string; path?: string; reason: string}[]
}

export interface ProvisionDeps {
  config: BladeConfig
  /** The storage root, resolved (realpath). */
  root: string
  directory: Directory
  signal: AbortSignal
}

/**
 * Gives every account of `groups` its folders on the storage: `users/<account>/` with
 * `incoming/` and `images/`, owned by the account, mode 0700, the admin group allowed to read
 * (ACL). Each VM runs as its owner, so libvirt's shared qemu user has no business there: the
 * entries older versions gave it are removed.
 * Idempotent: a second run changes nothing. Runs as root in folders students own, so every
 * folder is opened without following symlinks and changed through its descriptor.
 */
export async function provision(groups: string[], deps: ProvisionDeps): Promise<ProvisionReport> {
  const report: ProvisionReport = {groups, accounts: [], created: [], fixed: [], unchanged: [], problems: []}
  await mkdir(join(deps.root, 'users'), {mode: 0o755}).then(
    () => report.created.push(join(deps.root, 'users')),
    (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error
    },
  )
  const seen = new Map<string, DirectoryAccount>()
  for (const group of groups) {
    for (const member of await deps.directory.members(group, {signal: deps.signal})) seen.set(member.account, member)
  }
  for (const member of [...seen.values()].sort((a, b) => a.account.localeCompare(b.account))) {
    report.accounts.push(member.account)
    await provisionAccount(member, deps, report)
  }
  return report
}

async function provisionAccount(member: DirectoryAccount, deps: ProvisionDeps, report: ProvisionReport): Promise<void> {
  if (!ACCOUNT_PATTERN.test(member.account) || member.uid <= 0) {
    report.problems.push({account: member.account, reason: 'not a usable account name or uid; skipped'})
    return
  }
  const paths = userPaths(deps.root, member.account)
  const admin: AclEntry = `group:${deps.config.adminGroup}:r-x`
  const home = await ensureFolder(paths.home, join(deps.root, 'users'), member, [admin], deps, report)
  // Below a folder that is not right, nothing can be trusted to be what it seems.
  if (home === undefined) return
  try {
    // The children are made through the home's descriptor (/proc/self/fd/N/...), so they land
    // in the folder just checked even if the student swaps the path for a symlink meanwhile.
    const via = `/proc/self/fd/${home.handle.fd}`
    for (const [path, acl] of [[paths.incoming, [admin]], [paths.images, [admin]]] as const) {
      const child = await ensureFolder(path, via, member, [...acl], deps, report)
      await child?.handle.close()
    }
  } finally {
    await home.handle.close()
  }
}

/** Makes `path` (through `parent`, a folder path or descriptor path) and sets it right; undefined if it cannot be trusted. */
async function ensureFolder(
  path: string,
  parent: string,
  member: DirectoryAccount,
  acl: AclEntry[],
  deps: ProvisionDeps,
  report: ProvisionReport,
): Promise<OpenedPath | undefined> {
  const created = await mkdir(join(parent, basename(path)), {mode: 0o700}).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'EEXIST') return false
      throw error
    },
  )
  let opened: OpenedPath
  try {
    opened = await openExact(path, {code: 'FOLDER', directory: true})
  } catch (error) {
    report.problems.push({account: member.account, path, reason: await whyNotAFolder(path, error)})
    return undefined
  }
  try {
    const what = await fixFolder(opened, member, acl, deps.config.qemuUser, deps.signal)
    if (created) report.created.push(path)
    else if (what.length > 0) report.fixed.push({path, what})
    else report.unchanged.push(path)
    return opened
  } catch (error) {
    await opened.handle.close()
    throw error
  }
}

async function whyNotAFolder(path: string, error: unknown): Promise<string> {
  const target = await readlink(path).catch(() => undefined)
  const what = target === undefined ? (error as Error).message : `${path} is a symlink (to ${target}), not a folder.`
  return `${what} Left as it is: remove or fix it by hand, then run provision again.`
}

/** Sets owner, mode and ACL where they differ; returns what it changed. */
async function fixFolder(opened: OpenedPath, member: DirectoryAccount, acl: AclEntry[], qemuUser: string, signal: AbortSignal): Promise<string[]> {
  const what: string[] = []
  const {uid, gid, mode} = opened.stat
  if (uid !== member.uid || gid !== member.gid) {
    await opened.handle.chown(member.uid, member.gid)
    what.push(`owner ${uid}:${gid} -> ${member.uid}:${member.gid}`)
  }
  // Owner rwx, others nothing; the group bits are the ACL mask, which setfacl keeps right.
  if ((mode & 0o700) !== 0o700 || (mode & 0o007) !== 0 || (mode & 0o7000) !== 0) {
    await opened.handle.chmod(0o700)
    what.push(`mode ${(mode & 0o7777).toString(8).padStart(4, '0')} -> 0700`)
  }
  const stale = await presentUsers(opened, [qemuUser], {signal})
  if (stale.length > 0) {
    await removeUsers(opened, stale, {signal})
    what.push(`ACL - ${stale.map((u) => `user:${u}`).join(', ')}`)
  }
  const missing = await missingAcl(opened, acl, {signal})
  if (missing.length > 0) {
    await addAcl(opened, missing, {signal})
    what.push(`ACL + ${missing.join(', ')}`)
  }
  return what
}

/** The groups to provision when none are named: every role group of the directory. */
export function defaultGroups(config: BladeConfig): string[] {
  const ldap = config.ldap
  const groups = ldap ? [config.adminGroup, ...ldap.instructorGroups, ...ldap.studentGroups] : []
  if (groups.length === 0 || (ldap && ldap.studentGroups.length === 0)) {
    throw new ShienError('Name the group to provision: there is no list of student groups to take it from.', {
      code: 'USAGE',
      exit: 'usage',
      suggestions: ['shien admin provision --group students', 'Or set ldap.studentGroups in /etc/shien/config.json.'],
    })
  }
  return [...new Set(groups)]
}

export function describeProvision(r: ProvisionReport): string {
  const lines = [`Provisioned ${r.accounts.length} account(s) of ${r.groups.join(', ')}.`]
  for (const path of r.created) lines.push(`  created    ${path}`)
  for (const f of r.fixed) lines.push(`  fixed      ${f.path}: ${f.what.join('; ')}`)
  lines.push(`  unchanged  ${r.unchanged.length} folder(s) already right`)
  for (const p of r.problems) lines.push(`  PROBLEM    ${p.path ?? p.account}: ${p.reason}`)
  return lines.join('\n')
}
