import {ShienError} from '../errors.js'
import {firstErrorLine, runTool} from '../process/run.js'
import type {AccountStanding, Directory, DirectoryAccount, DirectoryCallOptions} from './directory.js'
import {roleOf} from './directory.js'

/**
 * The directory when no `ldap` section is configured: the system's own accounts and groups
 * (getent and id, so NSS-backed ones count too). Every account is a student with the default
 * limits, as before roles existed; members of `adminGroup` are admins.
 */
export class UnixDirectory implements Directory {
  constructor(private readonly adminGroup: string) {}

  async standing(account: string, o: DirectoryCallOptions): Promise<AccountStanding> {
    const entry = await passwdEntry(account, o)
    if (entry === undefined) return {role: 'student'}
    const ids = await runTool('id', ['-Gn', '--', account], {signal: o.signal, timeoutMs: 30_000})
    if (ids.exitCode !== 0) throw unavailable(`id -Gn ${account}`, ids.stderr)
    const groups = ids.stdout.trim().split(/\s+/).filter(Boolean).sort()
    return {entry: {...entry, groups}, role: roleOf(groups, {admin: this.adminGroup, instructor: [], student: 'anyone'})}
  }

  async members(group: string, o: DirectoryCallOptions): Promise<DirectoryAccount[]> {
    const g = await runTool('getent', ['group', group], {signal: o.signal, timeoutMs: 30_000})
    if (g.exitCode === 2) {
      throw new ShienError(`There is no group "${group}".`, {code: 'NO_SUCH_GROUP', exit: 'usage', suggestions: ['Check the name: getent group GROUP']})
    }
    if (g.exitCode !== 0) throw unavailable(`getent group ${group}`, g.stderr)
    const [, , gid = '', listed = ''] = g.stdout.trim().split(':')
    const names = new Set(listed.split(',').filter(Boolean))
    const all = await runTool('getent', ['passwd'], {signal: o.signal, timeoutMs: 60_000})
    for (const line of all.stdout.split('\n')) {
      const fields = line.split(':')
      if (fields.length >= 7 && fields[3] === gid) names.add(fields[0])
    }
    const accounts: DirectoryAccount[] = []
    for (const name of [...names].sort()) {
      const entry = await passwdEntry(name, o)
      if (entry) accounts.push({...entry, groups: [group]})
    }
    return accounts
  }
}

async function passwdEntry(account: string, o: DirectoryCallOptions): Promise<Omit<DirectoryAccount, 'groups'> | undefined> {
  const r = await runTool('getent', ['passwd', '--', account], {signal: o.signal, timeoutMs: 30_000})
  // getent exits 2 when the key is not found.
  if (r.exitCode === 2) return undefined
  if (r.exitCode !== 0) throw unavailable(`getent passwd ${account}`, r.stderr)
  const fields = r.stdout.split('\n')[0].split(':')
  if (fields.length < 7 || fields[0] !== account) return undefined
  return {account, uid: Number(fields[2]), gid: Number(fields[3])}
}

function unavailable(what: string, stderr: string): ShienError {
  return new ShienError(`Cannot read the system's accounts (${what}: ${firstErrorLine(stderr)}).`, {
    code: 'DIRECTORY_UNAVAILABLE',
    exit: 'remote',
    suggestions: ['Tell an admin: the blade cannot look up accounts.'],
  })
}
