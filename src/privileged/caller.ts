import {ShienError} from '../errors.js'
import {ACCOUNT_PATTERN} from '../names.js'
import {firstErrorLine, runTool} from '../process/run.js'

/** The two commands that run as root through the sudo rule. */
export type PrivilegedTool = 'ie-virsh' | 'ie-docker'

/** The person ie-virsh or ie-docker acts for. */
export interface Caller {
  uid: number
  account: string
  /** False when root ran the command directly (admin work), true when it came through sudo. */
  viaSudo: boolean
}

/** Maps a uid onto its account name (the passwd entry), or undefined if there is none. */
export type AccountLookup = (uid: number) => Promise<string | undefined>

/**
 * Who is calling. `tool` runs as root through a sudo rule, and sudo sets SUDO_UID itself
 * (env_reset drops a SUDO_UID the student exported), so that is the one variable trusted;
 * without it the caller is the real uid. Only root can be trusted to have been started by
 * sudo: anyone else running the binary directly could set SUDO_UID to whatever they like.
 */
export async function resolveCaller(
  env: Readonly<Record<string, string | undefined>>,
  realUid: number,
  lookup: AccountLookup,
  tool: PrivilegedTool,
): Promise<Caller> {
  if (realUid !== 0) {
    throw new ShienError(`${tool} must be run through sudo.`, {
      code: 'NOT_ROOT',
      exit: 'refused',
      suggestions: [`Run it as: sudo ${tool} ${tool === 'ie-docker' ? 'ps' : 'list'}`],
    })
  }
  const sudoUid = env.SUDO_UID
  if (sudoUid !== undefined && !/^(0|[1-9][0-9]{0,9})$/.test(sudoUid)) {
    throw new ShienError(`SUDO_UID "${sudoUid}" is not a uid.`, {code: 'BAD_CALLER', exit: 'refused'})
  }
  const uid = sudoUid === undefined ? realUid : Number(sudoUid)
  const account = await lookup(uid)
  if (account === undefined || !ACCOUNT_PATTERN.test(account)) {
    throw new ShienError(`No usable account for uid ${uid}.`, {
      code: 'BAD_CALLER',
      exit: 'refused',
      suggestions: ['Ask an admin to check your account (getent passwd must know it).'],
    })
  }
  return {uid, account, viaSudo: sudoUid !== undefined}
}

/** Looks the uid up with `getent passwd`, so LDAP accounts (through NSS) resolve too. */
export const getentLookup: AccountLookup = async (uid) => {
  const r = await runTool('getent', ['passwd', String(uid)], {timeoutMs: 30_000})
  // getent exits 2 when the key is not found.
  if (r.exitCode === 2) return undefined
  if (r.exitCode !== 0) {
    throw new ShienError(`Cannot look up uid ${uid}: ${firstErrorLine(r.stderr)}.`, {code: 'BAD_CALLER'})
  }
  const fields = r.stdout.split('\n')[0].split(':')
  // Check the entry is the one asked for: getent passwd also accepts names.
  return fields.length >= 7 && fields[2] === String(uid) ? fields[0] : undefined
}

/** Looks an account name up with `getent passwd`; its uid, or undefined if there is none. */
export async function getentUid(account: string): Promise<number | undefined> {
  const r = await runTool('getent', ['passwd', '--', account], {timeoutMs: 30_000})
  if (r.exitCode === 2) return undefined
  if (r.exitCode !== 0) {
    throw new ShienError(`Cannot look up ${account}: ${firstErrorLine(r.stderr)}.`, {code: 'BAD_ACCOUNT'})
  }
  const fields = r.stdout.split('\n')[0].split(':')
  // getent passwd also accepts uids: make sure the entry is the name asked for.
  return fields.length >= 7 && fields[0] === account ? Number(fields[2]) : undefined
}

/** The primary gid in the passwd entry of `uid` (NSS, so LDAP accounts too). */
export async function getentGid(uid: number): Promise<number> {
  const r = await runTool('getent', ['passwd', String(uid)], {timeoutMs: 30_000})
  const fields = r.stdout.split('\n')[0].split(':')
  if (r.exitCode !== 0 || fields.length < 7 || fields[2] !== String(uid)) {
    throw new ShienError(`Cannot find the group of uid ${uid}: ${firstErrorLine(r.stderr)}.`, {code: 'BAD_CALLER', exit: 'refused'})
  }
  return Number(fields[3])
}

/**
 * Every group `uid` is in, as gids: its passwd entry's and the supplementary ones, through NSS
 * (LDAP groups too), as `id -G` lists them. A uid with no passwd entry has none.
 */
export async function getentGroups(uid: number, o: {signal?: AbortSignal} = {}): Promise<number[]> {
  const account = await getentLookup(uid)
  if (account === undefined) return []
  const r = await runTool('id', ['-G', '--', account], {signal: o.signal, timeoutMs: 30_000})
  const gids = r.stdout.trim().split(/\s+/)
  if (r.exitCode !== 0 || !gids.every((g) => /^\d+$/.test(g))) {
    throw new ShienError(`Cannot find the groups of ${account} (uid ${uid}): ${firstErrorLine(r.stderr)}.`, {code: 'BAD_ACCOUNT'})
  }
  return gids.map(Number)
}
