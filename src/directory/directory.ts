/** What shien lets an account do on the blades. */
export type Role = 'admin' | 'instructor' | 'student'

/** An account as the directory knows it. */
export interface DirectoryAccount {
  account: string
  uid: number
  gid: number
  /** Names of every group the account is in, its primary group included. */
  groups: string[]
}

/** The account's role, or undefined: an account without a role has no rights at all. */
export interface AccountStanding {
  /** Undefined when the directory does not know the account. */
  entry?: DirectoryAccount
  role?: Role
}

export interface DirectoryCallOptions {
  signal: AbortSignal
}

/**
 * Where accounts, groups and roles come from: LDAP on the blades, Unix groups where no LDAP is
 * configured. A directory that cannot answer throws (DIRECTORY_UNAVAILABLE): callers fail
 * closed, since no answer must never read as "no restrictions".
 */
export interface Directory {
  /** The account's entry, groups and role. */
  standing(account: string, o: DirectoryCallOptions): Promise<AccountStanding>
  /** Every account in `group` (listed members and those whose primary group it is). */
  members(group: string, o: DirectoryCallOptions): Promise<DirectoryAccount[]>
}

/** The groups that give each role; `student: 'anyone'` makes every known account a student. */
export interface RoleGroups {
  admin: string
  instructor: readonly string[]
  student: readonly string[] | 'anyone'
}

/** The highest role the groups give: admin, then instructor, then student. */
export function roleOf(groups: readonly string[], roles: RoleGroups): Role | undefined {
  const inAny = (names: readonly string[]) => names.some((g) => groups.includes(g))
  if (groups.includes(roles.admin)) return 'admin'
  if (inAny(roles.instructor)) return 'instructor'
  if (roles.student === 'anyone' || inAny(roles.student)) return 'student'
  return undefined
}
