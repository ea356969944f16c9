/**
 * Everything the offline checks look at, read from a mounted guest in the one appliance launch
 * of its image. Only reading happens here; what it means is decided in image-checks.ts.
 */
import {posix} from 'node:path'

import {parsePasswd} from '../harden/edits.js'
import type {GuestFiles} from './guest-files.js'
import {parseShadow, type ShadowEntry} from './passwords.js'
import {readSshdConfig, type SshdSettings} from './sshd-config.js'
import {parseGroups, readSudoers, type GuestAccount, type GuestGroup} from './sudoers.js'

export interface GuestTextFile {
  path: string
  text: string
  mode: number
  uid: number
}

export interface GuestFacts {
  accounts: GuestAccount[]
  groups: GuestGroup[]
  /** Undefined when /etc/shadow is missing or unreadable as a regular file. */
  shadow?: ShadowEntry[]
  sudoers: {path: string; text: string}[]
  sshd: SshdSettings
  /** Every authorized keys file sshd would read, for every account. */
  authorizedKeys: (GuestTextFile & {user: string})[]
  /** Homes (and their .ssh) of accounts people log in as: root, uid >= 1000, any with keys. */
  loginDirs: {user: string; path: string; mode: number}[]
  /** `~/.ssh/id_*` private keys of login accounts, with the `.pub` next to them if any. */
  idKeys: (GuestTextFile & {user: string; pub?: string})[]
  /** Files named like Vagrant's machine keys, wherever they were looked for. */
  vagrantKeys: string[]
  /** Host keys sshd loads: the public line, or the private key when the .pub is missing. */
  hostKeys: {path: string; pub?: string; privateText?: string}[]
}

const MAX_KEY_FILE = 64 * 1024

export async function readGuestFacts(files: GuestFiles): Promise<GuestFacts> {
  const accounts = parsePasswd((await files.read('/etc/passwd')) ?? '')
  const groups = parseGroups((await files.read('/etc/group')) ?? '')
  const shadowText = await files.read('/etc/shadow')
  const sshd = await readSshdConfig(files)
  const authorizedKeys = await readAuthorizedKeys(files, accounts, sshd)
  const login = loginAccounts(accounts, authorizedKeys)
  return {
    accounts, groups, sshd, authorizedKeys,
    shadow: shadowText === undefined ? undefined : parseShadow(shadowText),
    sudoers: await readSudoers(files),
    loginDirs: await readLoginDirs(files, login),
    idKeys: await readIdKeys(files, login),
    vagrantKeys: await findVagrantKeys(files, login),
    hostKeys: await readHostKeys(files, sshd.hostKeys),
  }
}

/** sshd's AuthorizedKeysFile tokens for one account (%h, %u, %U, %%; relative to the home). */
export function authorizedKeysPaths(setting: string, account: GuestAccount): string[] {
  if (setting.trim().toLowerCase() === 'none') return []
  return setting.split(/\s+/).filter(Boolean).map((token) => {
    const expanded = token.replace(/%([%hUu])/g, (_, c: string) => ({'%': '%', h: account.home, u: account.name, U: String(account.uid)})[c]!)
    return expanded.startsWith('/') ? posix.normalize(expanded) : posix.join(account.home, expanded)
  })
}

async function readAuthorizedKeys(files: GuestFiles, accounts: GuestAccount[], sshd: SshdSettings): Promise<GuestFacts['authorizedKeys']> {
  const out: GuestFacts['authorizedKeys'] = []
  // Match blocks may name other files for some users: look at those too.
  const settings = [sshd.settings.authorizedkeysfile.value, ...sshd.conditional.filter((c) => c.keyword === 'authorizedkeysfile').map((c) => c.value)]
  for (const account of accounts) {
    if (!account.home.startsWith('/')) continue
    const paths = new Set(settings.flatMap((s) => authorizedKeysPaths(s, account)))
    for (const path of paths) {
      const file = await files.readWithStat(path, MAX_KEY_FILE * 16)
      if (file) out.push({user: account.name, path, text: file.text, mode: file.stat.mode, uid: file.stat.uid})
    }
  }
  return out
}

function loginAccounts(accounts: GuestAccount[], keys: GuestFacts['authorizedKeys']): GuestAccount[] {
  const withKeys = new Set(keys.map((k) => k.user))
  return accounts.filter((a) => a.home.startsWith('/') && a.home !== '/' && (a.uid === 0 || (a.uid >= 1000 && a.uid < 65534) || withKeys.has(a.name)))
}

async function readLoginDirs(files: GuestFiles, login: GuestAccount[]): Promise<GuestFacts['loginDirs']> {
  const out: GuestFacts['loginDirs'] = []
  for (const account of login) {
    for (const path of [account.home, posix.join(account.home, '.ssh')]) {
      const st = await files.stat(path)
      if (st?.kind === 'dir') out.push({user: account.name, path, mode: st.mode})
    }
  }
  return out
}

async function readIdKeys(files: GuestFiles, login: GuestAccount[]): Promise<GuestFacts['idKeys']> {
  const out: GuestFacts['idKeys'] = []
  for (const account of login) {
    const dir = posix.join(account.home, '.ssh')
    const names = await files.list(dir)
    for (const name of names.filter((n) => /^id_[A-Za-z0-9_-]+$/.test(n))) {
      const file = await files.readWithStat(posix.join(dir, name), MAX_KEY_FILE)
      if (!file) continue
      const pub = names.includes(`${name}.pub`) ? await files.read(posix.join(dir, `${name}.pub`), MAX_KEY_FILE) : undefined
      out.push({user: account.name, path: posix.join(dir, name), text: file.text, mode: file.stat.mode, uid: file.stat.uid, pub})
    }
  }
  return out
}

/**
 * `vagrant package` puts `vagrant_private_key` into boxes, and Vagrant keeps each machine's key
 * in `.vagrant/machines/<name>/<provider>/private_key` of a project: a copied project or box
 * leaves them in the guest. A few fixed depths under / and the login homes keep this bounded.
 */
async function findVagrantKeys(files: GuestFiles, login: GuestAccount[]): Promise<string[]> {
  const bases = ['/', '/vagrant/', ...login.map((a) => `${a.home.replace(/\/$/, '')}/`)]
  const patterns = bases.flatMap((b) => [
    `${b}vagrant_private_key`, `${b}*/vagrant_private_key`, `${b}*/*/vagrant_private_key`,
    `${b}.vagrant/machines/*/*/private_key`, `${b}*/.vagrant/machines/*/*/private_key`,
  ])
  const found = new Set<string>()
  for (const pattern of new Set(patterns)) {
    for (const path of await files.glob(pattern)) if ((await files.stat(path))?.kind === 'file') found.add(path)
  }
  return [...found].sort()
}

async function readHostKeys(files: GuestFiles, paths: string[]): Promise<GuestFacts['hostKeys']> {
  const out: GuestFacts['hostKeys'] = []
  for (const path of paths) {
    const pub = await files.read(`${path}.pub`, MAX_KEY_FILE)
    const privateText = pub === undefined ? await files.read(path, MAX_KEY_FILE) : undefined
    if (pub !== undefined || privateText !== undefined) out.push({path, pub, privateText})
  }
  return out
}
