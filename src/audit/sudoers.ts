/**
 * Which accounts sudo lets run something without a password: `NOPASSWD:` in a user
 * specification, or `Defaults !authenticate`. Files are followed as sudo follows them:
 * `@include`/`#include`, and `@includedir`/`#includedir` (files whose names hold no `.` and do
 * not end in `~`, in lexical order). User lists understand names, `%group`, `#uid`, `ALL` and
 * `User_Alias`es; a rule that cannot be resolved errs toward reporting it.
 */
import {posix} from 'node:path'

import type {ConfigSource} from './sshd-config.js'

export interface GuestAccount {
  name: string
  uid: number
  gid: number
  home: string
}

export interface GuestGroup {
  name: string
  gid: number
  members: string[]
}

export interface NopasswdRule {
  file: string
  /** The rule as written (continuation lines joined), for the report. */
  rule: string
}

const MAX_FILES = 128
const MAX_DEPTH = 8

/** Every sudoers file sudo reads, in order, starting with /etc/sudoers. */
export async function readSudoers(src: ConfigSource & {list(dir: string): Promise<string[]>}): Promise<{path: string; text: string}[]> {
  const out: {path: string; text: string}[] = []
  const visit = async (path: string, depth: number): Promise<void> => {
    if (depth > MAX_DEPTH || out.length >= MAX_FILES || out.some((f) => f.path === path)) return
    const text = await src.read(path)
    if (text === undefined) return
    out.push({path, text})
    for (const line of logicalLines(text)) {
      const m = /^[@#](include|includedir)\s+(.+)$/.exec(line.trim())
      if (!m) continue
      const target = posix.resolve(posix.dirname(path), m[2].trim())
      if (m[1] === 'include') await visit(target, depth + 1)
      else for (const name of (await src.list(target)).filter((n) => !n.includes('.') && !n.endsWith('~')).sort()) await visit(posix.join(target, name), depth + 1)
    }
  }
  await visit('/etc/sudoers', 0)
  return out
}

/** Lines with `\` continuations joined. */
function logicalLines(text: string): string[] {
  return text.replace(/\\\r?\n/g, ' ').split(/\r?\n/)
}

/** A line without its comment; `#include`, `#123` (a uid) and `%#123` are not comments. */
function stripComment(line: string): string {
  const t = line.trim()
  if (/^#include(dir)?\s/.test(t)) return ''
  return t.replace(/(^|[\s,=:(!])#(?![0-9]).*$/, '$1').trim()
}

/** Accounts that have at least one passwordless sudo rule, with the rules. */
export function nopasswdAccounts(files: {path: string; text: string}[], accounts: GuestAccount[], groups: GuestGroup[]): Map<string, NopasswdRule[]> {
  const aliases = new Map<string, string[]>()
  const result = new Map<string, NopasswdRule[]>()
  const add = (names: string[], rule: NopasswdRule) => {
    for (const name of names) result.set(name, [...(result.get(name) ?? []), rule])
  }
  for (const {path, text} of files) {
    for (const raw of logicalLines(text)) {
      const line = stripComment(raw)
      if (line === '' || line.startsWith('@')) continue
      const alias = /^User_Alias\s+(.+)$/.exec(line)
      if (alias) {
        for (const def of alias[1].split(':')) {
          const [name, list] = def.split('=')
          if (name && list) aliases.set(name.trim(), list.split(',').map((s) => s.trim()))
        }
        continue
      }
      const rule = {file: path, rule: line}
      const defaults = /^Defaults(?::(\S+))?\s+(.*)$/.exec(line)
      if (defaults) {
        if (/(^|[\s,])!authenticate\b/.test(defaults[2])) add(resolveUsers(defaults[1] ? defaults[1].split(',') : ['ALL'], accounts, groups, aliases), rule)
        continue
      }
      if (!/\bNOPASSWD\s*:/.test(line) || !line.includes('=')) continue
      const users = line.split(/\s+/)[0]
      add(resolveUsers(users.split(','), accounts, groups, aliases), rule)
    }
  }
  return result
}

function resolveUsers(items: string[], accounts: GuestAccount[], groups: GuestGroup[], aliases: Map<string, string[]>, depth = 0): string[] {
  const out = new Set<string>()
  for (const raw of items.map((s) => s.trim()).filter(Boolean)) {
    // A negated entry (`!bob`) only narrows a list; reporting bob anyway errs on the safe side.
    const item = raw.replace(/^!+/, '')
    if (item === 'ALL') accounts.forEach((a) => out.add(a.name))
    else if (aliases.has(item) && depth < 8) resolveUsers(aliases.get(item)!, accounts, groups, aliases, depth + 1).forEach((n) => out.add(n))
    else if (item.startsWith('%')) membersOf(item.slice(1).replace(/^:/, ''), accounts, groups).forEach((n) => out.add(n))
    else if (/^#\d+$/.test(item)) accounts.filter((a) => a.uid === Number(item.slice(1))).forEach((a) => out.add(a.name))
    else out.add(item.replace(/^"(.*)"$/, '$1'))
  }
  return [...out]
}

function membersOf(group: string, accounts: GuestAccount[], groups: GuestGroup[]): string[] {
  const g = /^#\d+$/.test(group) ? groups.find((x) => x.gid === Number(group.slice(1))) : groups.find((x) => x.name === group)
  if (!g) return []
  return [...new Set([...g.members, ...accounts.filter((a) => a.gid === g.gid).map((a) => a.name)])]
}

/** /etc/group, as far as sudo's `%group` needs it. */
export function parseGroups(text: string): GuestGroup[] {
  return text.split('\n').flatMap((line) => {
    const [name, , gid, members] = line.replace(/\r$/, '').split(':')
    if (!name || name.startsWith('#') || !/^\d+$/.test(gid ?? '')) return []
    return [{name, gid: Number(gid), members: (members ?? '').split(',').filter(Boolean)}]
  })
}
