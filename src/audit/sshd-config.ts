/**
 * sshd's effective settings, read the way sshd reads them (OpenSSH servconf.c): keywords are
 * case-insensitive, `Keyword=value` works, the FIRST value read wins, `Include` is expanded in
 * place (globs sorted, relative to /etc/ssh, 16 levels deep), and a `Match` block applies only to
 * some connections until the next `Match` or the end of its file. Values inside Match blocks are
 * kept apart as conditional, since they can turn password login on for some users only.
 */
import {posix} from 'node:path'

/** How the guest's files are reached; the audit binds this to the read-only appliance. */
export interface ConfigSource {
  /** The file's text, or undefined when there is no such regular file. */
  read(path: string): Promise<string | undefined>
  /** Absolute paths matching a glob, sorted as glob(3) sorts them. */
  glob(pattern: string): Promise<string[]>
}

export const TRACKED = ['passwordauthentication', 'permitrootlogin', 'kbdinteractiveauthentication', 'usepam', 'permitemptypasswords', 'authorizedkeysfile'] as const
export type Tracked = (typeof TRACKED)[number]

export interface Setting {
  value: string
  /** Where it was set; absent for sshd's built-in default. */
  file?: string
  line?: number
}

export interface ConditionalSetting extends Required<Setting> {
  keyword: Tracked
  /** The Match criteria, e.g. `User vagrant`. */
  match: string
}

export interface SshdSettings {
  /** False when the image has no /etc/ssh/sshd_config (no sshd to audit). */
  present: boolean
  settings: Record<Tracked, Setting>
  conditional: ConditionalSetting[]
  /** HostKey files in effect (all of them count, not only the first). */
  hostKeys: string[]
  /** Files read, in sshd's order. */
  files: string[]
}

const SSHDIR = '/etc/ssh'
const MAX_DEPTH = 16
const DEFAULTS: Record<Tracked, string> = {
  passwordauthentication: 'yes',
  permitrootlogin: 'prohibit-password',
  kbdinteractiveauthentication: 'yes',
  usepam: 'no',
  permitemptypasswords: 'no',
  authorizedkeysfile: '.ssh/authorized_keys .ssh/authorized_keys2',
}
const DEFAULT_HOST_KEYS = ['rsa', 'ecdsa', 'ed25519'].map((t) => `${SSHDIR}/ssh_host_${t}_key`)
const ALIASES: Record<string, Tracked> = {challengeresponseauthentication: 'kbdinteractiveauthentication'}

interface State {
  src: ConfigSource
  first: Partial<Record<Tracked, Setting>>
  conditional: ConditionalSetting[]
  hostKeys: string[]
  files: string[]
}

export async function readSshdConfig(src: ConfigSource, path = `${SSHDIR}/sshd_config`): Promise<SshdSettings> {
  const state: State = {src, first: {}, conditional: [], hostKeys: [], files: []}
  const text = await src.read(path)
  if (text !== undefined) await parseFile(state, path, text, undefined, 0)
  const settings = Object.fromEntries(TRACKED.map((k) => [k, state.first[k] ?? {value: DEFAULTS[k]}])) as Record<Tracked, Setting>
  return {
    present: text !== undefined, settings, conditional: state.conditional,
    hostKeys: state.hostKeys.length > 0 ? state.hostKeys : DEFAULT_HOST_KEYS, files: state.files,
  }
}

/** `match` is the Match criteria in force where the file is included (undefined: global). */
async function parseFile(state: State, file: string, text: string, match: string | undefined, depth: number): Promise<void> {
  state.files.push(file)
  let current = match
  for (const [i, raw] of text.split('\n').entries()) {
    const parsed = parseLine(raw)
    if (!parsed) continue
    const {keyword, args} = parsed
    if (keyword === 'match') {
      // `Match all` returns to settings that apply to every connection.
      current = args.length === 1 && args[0].toLowerCase() === 'all' ? match : args.join(' ')
    } else if (keyword === 'include') {
      await include(state, args, current, depth)
    } else {
      record(state, keyword, args, {file, line: i + 1}, current)
    }
  }
}

async function include(state: State, patterns: string[], match: string | undefined, depth: number): Promise<void> {
  if (depth >= MAX_DEPTH) return
  for (const pattern of patterns) {
    const absolute = pattern.startsWith('/') ? pattern : posix.join(SSHDIR, pattern)
    for (const path of await state.src.glob(absolute)) {
      const text = await state.src.read(path)
      if (text !== undefined) await parseFile(state, path, text, match, depth + 1)
    }
  }
}

function record(state: State, keyword: string, args: string[], where: {file: string; line: number}, match: string | undefined): void {
  if (keyword === 'hostkey') {
    if (match === undefined && args[0]) state.hostKeys.push(args[0].startsWith('/') ? args[0] : posix.join(SSHDIR, args[0]))
    return
  }
  const key = (ALIASES[keyword] ?? keyword) as Tracked
  if (!TRACKED.includes(key) || args.length === 0) return
  const value = key === 'authorizedkeysfile' ? args.join(' ') : args[0].toLowerCase()
  if (match !== undefined) state.conditional.push({keyword: key, value, match, ...where})
  else state.first[key] ??= {value, ...where}
}

/** Keyword (lower case) and arguments of one line, or undefined for blanks and comments. */
export function parseLine(raw: string): {keyword: string; args: string[]} | undefined {
  const m = /^\s*([A-Za-z0-9]+)(?:\s*=\s*|\s+|$)(.*)$/.exec(raw.replace(/\r$/, ''))
  if (!m || raw.trimStart().startsWith('#')) return undefined
  return {keyword: m[1].toLowerCase(), args: splitArgs(m[2])}
}

/** sshd's argv_split: whitespace-separated, "double" or 'single' quotes, a token starting with # ends the line. */
function splitArgs(text: string): string[] {
  const args: string[] = []
  const token = /\s*(?:"([^"]*)"|'([^']*)'|(\S+))/y
  for (let m = token.exec(text); m; m = token.exec(text)) {
    const plain = m[3]
    if (plain?.startsWith('#')) break
    args.push(m[1] ?? m[2] ?? plain)
  }
  return args
}

/**
 * Whether sshd takes passwords from `user` in some connection: PasswordAuthentication, or
 * keyboard-interactive through PAM (which asks for the same password), and for root also
 * PermitRootLogin yes. Conditional Match settings count: they open it for someone.
 */
export function passwordLoginPossible(s: SshdSettings, user: string): boolean {
  if (!s.present) return false
  const on = (k: Tracked) => s.settings[k].value === 'yes' || s.conditional.some((c) => c.keyword === k && c.value === 'yes')
  const viaPassword = on('passwordauthentication') || (on('kbdinteractiveauthentication') && on('usepam'))
  return viaPassword && (user !== 'root' || on('permitrootlogin'))
}
