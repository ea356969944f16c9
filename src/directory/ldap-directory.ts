import {AndFilter, Client, EqualityFilter, type Filter, FilterParser, InvalidCredentialsError, OrFilter} from 'ldapts'

import {ShienError} from '../errors.js'
import type {LdapConfig} from '../config/blade-config.js'
import {type AccountStanding, type Directory, type DirectoryAccount, type DirectoryCallOptions, type RoleGroups, roleOf} from './directory.js'
import {readPasswordFile} from './password-file.js'

type Attributes = Record<string, unknown>

/**
 * Accounts (posixAccount), groups (posixGroup with memberUid) and roles from an LDAP server,
 * through ldapts. One connection per call, bound with the service DN. Everything a user typed
 * goes into a filter as an EqualityFilter value, which ldapts escapes: `*`, `(`, `)` or `\` in
 * an account name match only themselves.
 */
export class LdapDirectory implements Directory {
  private readonly userFilter: Filter
  private readonly groupFilter: Filter
  private readonly roles: RoleGroups

  constructor(
    private readonly config: LdapConfig,
    adminGroup: string,
    private readonly readPassword: (path: string) => Promise<string> = readPasswordFile,
  ) {
    this.userFilter = parseConfigFilter('userFilter', config.userFilter)
    this.groupFilter = parseConfigFilter('groupFilter', config.groupFilter)
    const student = config.studentGroups.length === 0 ? 'anyone' : config.studentGroups
    this.roles = {admin: adminGroup, instructor: config.instructorGroups, student}
  }

  standing(account: string, o: DirectoryCallOptions): Promise<AccountStanding> {
    return this.session(o, async (client) => {
      const entry = await this.findAccount(client, account)
      return entry ? {entry, role: roleOf(entry.groups, this.roles)} : {}
    })
  }

  members(group: string, o: DirectoryCallOptions): Promise<DirectoryAccount[]> {
    return this.session(o, async (client) => {
      const [found] = await this.search(client, this.config.groupBase, this.and(this.groupFilter, eq('cn', group)), ['cn', 'gidNumber', 'memberUid'])
      if (found === undefined) {
        throw new ShienError(`The directory has no group "${group}" under ${this.config.groupBase}.`, {
          code: 'NO_SUCH_GROUP',
          exit: 'usage',
          suggestions: ['Check the group name (ldapsearch -x cn=GROUP), or ldap.groupBase in /etc/shien/config.json.'],
        })
      }
      const names = new Set(values(found, 'memberUid'))
      const gid = values(found, 'gidNumber')[0]
      if (gid !== undefined) {
        const primary = await this.search(client, this.config.userBase, this.and(this.userFilter, eq('gidNumber', gid)), ['uid'])
        for (const entry of primary) names.add(values(entry, 'uid')[0] ?? '')
      }
      const accounts: DirectoryAccount[] = []
      for (const name of [...names].filter((n) => n.length > 0).sort()) {
        const entry = await this.findAccount(client, name)
        if (entry) accounts.push(entry)
      }
      return accounts
    })
  }

  private async findAccount(client: Client, account: string): Promise<DirectoryAccount | undefined> {
    const found = await this.search(client, this.config.userBase, this.and(this.userFilter, eq('uid', account)), ['uid', 'uidNumber', 'gidNumber'])
    if (found.length === 0) return undefined
    if (found.length > 1) throw directoryInvalid(`${found.length} entries under ${this.config.userBase} have uid=${account}.`)
    const uid = Number(values(found[0], 'uidNumber')[0])
    const gid = Number(values(found[0], 'gidNumber')[0])
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw directoryInvalid(`The entry of ${account} lacks a numeric uidNumber or gidNumber.`)
    const memberOf = new OrFilter({filters: [eq('memberUid', account), eq('gidNumber', String(gid))]})
    const groups = await this.search(client, this.config.groupBase, this.and(this.groupFilter, memberOf), ['cn'])
    return {account, uid, gid, groups: groups.flatMap((g) => values(g, 'cn')).sort()}
  }

  private and(...filters: Filter[]): Filter {
    return new AndFilter({filters})
  }

  private async search(client: Client, base: string, filter: Filter, attributes: string[]): Promise<Attributes[]> {
    const {searchEntries} = await client.search(base, {scope: 'sub', filter, attributes, sizeLimit: 10_000})
    return searchEntries as Attributes[]
  }

  /** Connects, binds, runs `work` and always unbinds; any failure to get an answer fails closed. */
  private async session<T>(o: DirectoryCallOptions, work: (client: Client) => Promise<T>): Promise<T> {
    o.signal.throwIfAborted()
    const timeout = this.config.timeoutMs
    const client = new Client({url: this.config.url, timeout, connectTimeout: timeout})
    try {
      if (this.config.bindDn !== undefined) {
        const password = await this.readPassword(this.config.bindPasswordFile ?? '')
        await client.bind(this.config.bindDn, password)
      }
      return await work(client)
    } catch (error) {
      throw this.unavailable(error)
    } finally {
      await client.unbind().catch(() => undefined)
    }
  }

  private unavailable(error: unknown): unknown {
    if (error instanceof ShienError) return error
    const where = this.config.url
    const reason = error instanceof InvalidCredentialsError
      ? `the bind as ${this.config.bindDn} was refused (invalid credentials)`
      : ((error as NodeJS.ErrnoException).code ?? (error as Error).message ?? String(error))
    return new ShienError(`Cannot get an answer from the account directory ${where}: ${reason}. Without it no rights can be granted.`, {
      code: 'DIRECTORY_UNAVAILABLE',
      exit: 'remote',
      cause: error,
      suggestions: ['Try again in a minute; if it keeps failing, tell an admin (the LDAP server or ldap.* in /etc/shien/config.json).'],
    })
  }
}

function eq(attribute: string, value: string): EqualityFilter {
  return new EqualityFilter({attribute, value})
}

/** An attribute's values as strings, whether ldapts gave one value or several. */
function values(entry: Attributes, name: string): string[] {
  const key = Object.keys(entry).find((k) => k.toLowerCase() === name.toLowerCase())
  const raw = key === undefined ? [] : entry[key]
  return (Array.isArray(raw) ? raw : [raw]).map((v) => (Buffer.isBuffer(v) ? v.toString('utf8') : String(v)))
}

/** Parses a filter from the configuration, so a typo there is a clear error rather than an LDAP one. */
export function parseConfigFilter(name: string, text: string): Filter {
  try {
    return FilterParser.parseString(text)
  } catch (error) {
    throw directoryInvalid(`ldap.${name} "${text}" is not an LDAP filter (${(error as Error).message}).`)
  }
}

function directoryInvalid(message: string): ShienError {
  return new ShienError(`The account directory is misconfigured: ${message}`, {
    code: 'CONFIG_INVALID',
    suggestions: ['Ask an admin to check ldap.* in /etc/shien/config.json and the directory entries.'],
  })
}
