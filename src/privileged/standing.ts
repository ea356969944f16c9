import type {Directory, Role} from '../directory/directory.js'
import {ShienError} from '../errors.js'
import {checkAccount} from '../names.js'
import type {Caller} from './caller.js'

/** Whose domains a command acts on. */
export interface Owner {
  uid: number
  account: string
}

/** The caller's role, and the account (with its groups) the command acts for. */
export interface Standing {
  role: Role
  owner: Owner
  ownerGroups: string[]
}

export interface StandingInputs {
  caller: Caller
  directory: Directory
  /** `--account`: only admins may name an account other than their own. */
  account?: string
  lookupUid: (account: string) => Promise<number | undefined>
  signal: AbortSignal
  /** What the command manages, for messages: `VMs` (default) or `containers`. */
  things?: string
}

/**
 * Resolves what the caller may do, from the directory. Root is the blade's admin and needs no
 * directory. Anyone else needs a role there: an account the directory does not know, or knows
 * under another uid, gets nothing, and a directory that cannot answer has already thrown.
 */
export async function resolveStanding(i: StandingInputs): Promise<Standing> {
  const o = {signal: i.signal}
  const self: Owner = {uid: i.caller.uid, account: i.caller.account}
  let role: Role | undefined = 'admin'
  let groups: string[] = []
  if (i.caller.uid !== 0) {
    const standing = await i.directory.standing(i.caller.account, o)
    if (standing.entry && standing.entry.uid !== i.caller.uid) {
      throw refused('ACCOUNT_MISMATCH', `The directory gives ${i.caller.account} uid ${standing.entry.uid}, but you are uid ${i.caller.uid}.`)
    }
    role = standing.role
    groups = standing.entry?.groups ?? []
  }
  if (role === undefined) {
    throw refused('NO_ROLE', `${i.caller.account} has no role on the blades (not an admin, instructor or student in the directory).`)
  }
  if (i.account === undefined || i.account === i.caller.account) return {role, owner: self, ownerGroups: groups}
  if (role !== 'admin') {
    throw refused('NOT_ADMIN', `Only admins may act on another account's ${i.things ?? 'VMs'}; ${i.caller.account} is ${article(role)} ${role}.`)
  }
  return {role, ...(await otherOwner(i, i.account))}
}

async function otherOwner(i: StandingInputs, account: string): Promise<{owner: Owner; ownerGroups: string[]}> {
  checkAccount(account)
  const uid = await i.lookupUid(account)
  if (uid === undefined) throw refused('NO_SUCH_ACCOUNT', `There is no account "${account}" on this blade.`)
  // The owner's own groups decide the limits its VMs get, whoever acts on them.
  const standing = await i.directory.standing(account, {signal: i.signal})
  return {owner: {uid, account}, ownerGroups: standing.entry?.groups ?? []}
}

const article = (role: Role) => (role === 'admin' || role === 'instructor' ? 'an' : 'a')

function refused(code: string, message: string): ShienError {
  return new ShienError(message, {
    code,
    exit: 'refused',
    suggestions: ['Ask an admin if you think this is wrong.'],
  })
}
