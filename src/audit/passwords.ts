/**
 * Weak passwords in /etc/shadow: every account whose hash a known weak password produces. The
 * hashing is libxcrypt's (crypt-verifier.ts); this file decides what to ask and what it means.
 */
import {verifyPasswords, type CryptAnswer, type CryptCheck} from './crypt-verifier.js'

export interface ShadowEntry {
  name: string
  field: string
}

export type PasswordState =
  /** `*`, `!`, `!!`...: no password can match. */
  | {kind: 'none'}
  /** An empty field: no password needed at all. */
  | {kind: 'empty'}
  /** A crypt hash; `locked` when `passwd -l` prefixed it with `!` (unlocking brings it back). */
  | {kind: 'hash'; hash: string; scheme: string; locked: boolean}

/** Where a matching candidate came from; only admin-list entries are kept out of reports. */
export type CandidateSource = 'builtin' | 'username' | 'empty' | 'admin-list'

export interface WeakPassword {
  user: string
  source: CandidateSource
  /** The password itself, except for the admin's list (which may hold local secrets). */
  password?: string
  scheme: string
  locked: boolean
}

export function parseShadow(text: string): ShadowEntry[] {
  return text.split('\n').flatMap((line) => {
    const fields = line.replace(/\r$/, '').split(':')
    return fields.length >= 2 && fields[0] !== '' && !fields[0].startsWith('#') ? [{name: fields[0], field: fields[1]}] : []
  })
}

const SCHEMES: [RegExp, string][] = [
  [/^\$y\$/, 'yescrypt'], [/^\$gy\$/, 'gost-yescrypt'], [/^\$7\$/, 'scrypt'], [/^\$2[abxy]\$/, 'bcrypt'],
  [/^\$6\$/, 'sha512crypt'], [/^\$5\$/, 'sha256crypt'], [/^\$1\$/, 'md5crypt'], [/^\$sha1\$/, 'sha1crypt'],
  [/^_/, 'bsdicrypt'], [/^[./0-9A-Za-z]{13}$/, 'descrypt'],
]

export function classify(field: string): PasswordState {
  if (field === '') return {kind: 'empty'}
  const hash = field.replace(/^!+/, '')
  const scheme = SCHEMES.find(([re]) => re.test(hash))?.[1]
  return scheme ? {kind: 'hash', hash, scheme, locked: hash !== field} : {kind: 'none'}
}

/** Built-ins, the account's own name, then the admin's list; each once. */
export function candidatesFor(user: string, lists: {builtin: string[]; admin: string[]}): {password: string; source: CandidateSource}[] {
  const seen = new Set<string>()
  const out: {password: string; source: CandidateSource}[] = []
  const push = (password: string, source: CandidateSource) => {
    if (seen.has(password)) return
    seen.add(password)
    out.push({password, source: password === '' ? 'empty' : source})
  }
  for (const p of lists.builtin) push(p, 'builtin')
  push(user, 'username')
  for (const p of lists.admin) push(p, 'admin-list')
  return out
}

export interface WeakPasswordScan {
  weak: WeakPassword[]
  /** Accounts whose hash scheme the host's libxcrypt does not know: not verified. */
  unverified: {user: string; scheme: string}[]
}

type Verifier = (checks: CryptCheck[], o: {signal?: AbortSignal}) => Promise<CryptAnswer[]>

export async function findWeakPasswords(
  shadow: ShadowEntry[], lists: {builtin: string[]; admin: string[]}, o: {signal?: AbortSignal; verify?: Verifier} = {},
): Promise<WeakPasswordScan> {
  const weak: WeakPassword[] = []
  const checks: (CryptCheck & {source: CandidateSource; state: Extract<PasswordState, {kind: 'hash'}>})[] = []
  for (const entry of shadow) {
    const state = classify(entry.field)
    if (state.kind === 'empty') weak.push({user: entry.name, source: 'empty', password: '', scheme: 'none', locked: false})
    if (state.kind !== 'hash') continue
    for (const c of candidatesFor(entry.name, lists)) {
      checks.push({group: entry.name, hash: state.hash, candidate: c.password, source: c.source, state})
    }
  }
  const answers = await (o.verify ?? verifyPasswords)(checks, {signal: o.signal})
  const unverified = new Map<string, string>()
  for (const [i, check] of checks.entries()) {
    if (answers[i] === undefined) unverified.set(check.group, check.state.scheme)
    if (answers[i] !== true) continue
    const shown = check.source === 'admin-list' ? {} : {password: check.candidate}
    weak.push({user: check.group, source: check.source, ...shown, scheme: check.state.scheme, locked: check.state.locked})
  }
  return {weak, unverified: [...unverified].map(([user, scheme]) => ({user, scheme}))}
}
