/**
 * Pure edits on guest file contents. Contents are "binary strings" (Buffer latin1): each char is
 * one byte, so whatever these functions do not touch goes back to the guest byte for byte,
 * whatever its encoding.
 */
import {createHash} from 'node:crypto'
import {badInput} from '../errors.js'
import {VAGRANT_INSECURE_KEYS} from './insecure-keys.js'

/** Lines with their own terminators ("\n", "\r\n" or none at the end). */
export function splitLines(text: string): string[] {
  return text.match(/[^\n]*\n|[^\n]+$/g) ?? []
}

const BASE64_TOKEN = /^[A-Za-z0-9+/]{16,}={0,2}$/
const INSECURE_BLOBS = VAGRANT_INSECURE_KEYS.map((k) => Buffer.from(k.blob, 'base64'))

/** Decoded bytes of a base64 token that looks like an SSH key blob, else undefined. */
export function decodeBlob(token: string): Buffer | undefined {
  return BASE64_TOKEN.test(token) ? Buffer.from(token, 'base64') : undefined
}

/** Every whitespace-separated token of a line, with option quotes and commas split off. */
export function tokens(line: string): string[] {
  return line.trim().split(/[\s,"]+/).filter((t) => t !== '')
}

/**
 * True when any token of the line decodes to an insecure key. Comparing decoded bytes (not text)
 * and looking at every token (not only the second field) also catches keys behind options such as
 * `no-pty,from="10.0.0.1"` or `cert-authority`; a line sshd would not even parse is removed too,
 * which only errs toward less access.
 */
export function hasInsecureKey(line: string): boolean {
  return tokens(line).some((token) => {
    const blob = decodeBlob(token)
    return blob !== undefined && INSECURE_BLOBS.some((insecure) => insecure.equals(blob))
  })
}

/** authorized_keys without the insecure keys; other lines (and their line endings) are kept. */
export function removeInsecureKeys(content: string): {content: string; removed: number} {
  const kept: string[] = []
  let removed = 0
  for (const line of splitLines(content)) {
    if (hasInsecureKey(line)) removed++
    else kept.push(line)
  }
  return {content: kept.join(''), removed}
}

/** A validated public key: the authorized_keys line to write and the key's blob bytes. */
export interface PublicKey {
  line: string
  type: string
  blob: Buffer
}

/** Key type named inside an SSH key blob (a uint32 length, then the name). */
export function blobType(blob: Buffer): string | undefined {
  if (blob.length < 8) return undefined
  const length = blob.readUInt32BE(0)
  return length > 0 && length < 64 && blob.length > 4 + length ? blob.subarray(4, 4 + length).toString('latin1') : undefined
}

/**
 * Parses one authorized_keys line (options allowed) and refuses anything sshd would not take as a
 * key, more than one line, or a Vagrant insecure key.
 */
export function parsePublicKey(text: string): PublicKey {
  const line = text.trim()
  const refuse = (why: string) =>
    badInput('HARDEN_BAD_PUBLIC_KEY', `The public key is not usable: ${why}.`, ['Pass the contents of a .pub file, e.g. ~/.ssh/id_ed25519.pub'])
  if (line === '' || /[\r\n\0]/.test(line)) throw refuse('it must be exactly one line')
  const fields = line.split(/\s+/)
  const at = fields.findIndex((field, i) => {
    const blob = decodeBlob(fields[i + 1] ?? '')
    return blob !== undefined && blobType(blob) === field
  })
  if (at < 0) throw refuse('no "TYPE BASE64" key was found in it')
  if (hasInsecureKey(line)) throw refuse('it is a Vagrant insecure key, which everyone has')
  return {line, type: fields[at], blob: Buffer.from(fields[at + 1], 'base64')}
}

/** authorized_keys with `key` appended, unless a line already holds the same key blob. */
export function addAuthorizedKey(content: string, key: PublicKey): {content: string; added: boolean} {
  const present = splitLines(content).some((line) =>
    tokens(line).some((token) => decodeBlob(token)?.equals(key.blob) ?? false),
  )
  if (present) return {content, added: false}
  const separator = content === '' || content.endsWith('\n') ? '' : '\n'
  return {content: `${content}${separator}${key.line}\n`, added: true}
}

/** One /etc/passwd entry, as far as hardening needs it. */
export interface PasswdEntry {
  name: string
  uid: number
  gid: number
  home: string
}

export function parsePasswd(content: string): PasswdEntry[] {
  const entries: PasswdEntry[] = []
  for (const line of splitLines(content)) {
    const fields = line.replace(/\r?\n$/, '').split(':')
    if (fields.length < 7 || line.startsWith('#')) continue
    const [name, , uid, gid, , home] = fields
    if (!/^\d+$/.test(uid) || !/^\d+$/.test(gid)) continue
    entries.push({name, uid: Number(uid), gid: Number(gid), home})
  }
  return entries
}

/**
 * The password field written for locked accounts. Not `!` (or `!` + hash): with `UsePAM no`,
 * OpenSSH treats a `!`-prefixed field as a locked account and refuses every login, public key
 * included, so the student could not get in. `*` matches no password (crypt never yields it), is
 * not "locked" to sshd with or without PAM, and drops the hash of the publicly known password
 * instead of keeping it for a later `passwd -u`.
 */
export const NO_PASSWORD = '*'

/** shadow with the password field of `users` set to NO_PASSWORD; all other bytes kept. */
export function lockPasswords(content: string, users: string[]): {content: string; locked: string[]; missing: string[]} {
  const locked: string[] = []
  const lines = splitLines(content).map((line) => {
    const fields = line.split(':')
    if (fields.length < 3 || !users.includes(fields[0])) return line
    // A duplicate entry is locked too: which one a tool reads first is not ours to guess.
    if (!locked.includes(fields[0])) locked.push(fields[0])
    fields[1] = NO_PASSWORD
    return fields.join(':')
  })
  return {content: lines.join(''), locked, missing: users.filter((u) => !locked.includes(u))}
}

const BLOCK_BEGIN = '# BEGIN shien harden'
const BLOCK_END = '# END shien harden'

/**
 * Settings shien puts first in sshd_config. ChallengeResponseAuthentication is what OpenSSH
 * before 8.7 calls KbdInteractiveAuthentication (newer ones take it as an alias). AuthorizedKeysFile
 * pins the two files harden cleaned: a box naming another file could otherwise keep an insecure key.
 */
export const SSHD_SETTINGS = [
  'PasswordAuthentication no',
  'KbdInteractiveAuthentication no',
  'ChallengeResponseAuthentication no',
  'PermitRootLogin prohibit-password',
  'AuthorizedKeysFile .ssh/authorized_keys .ssh/authorized_keys2',
] as const

/**
 * sshd_config with shien's block first. sshd keeps the first value it reads for a keyword, and
 * drop-ins count where their `Include` sits, so only a block at the very top wins over them. An
 * earlier block (anywhere) is replaced, so running harden twice changes nothing.
 */
export function withSshdBlock(content: string): {content: string; changed: boolean} {
  const block = [
    `${BLOCK_BEGIN} (sshd uses the first value it reads: keep this block first)`,
    ...SSHD_SETTINGS,
    BLOCK_END,
  ].map((line) => `${line}\n`).join('')
  const lines = splitLines(content)
  for (;;) {
    // Pair each END with the nearest BEGIN above it; an unpaired marker is left alone rather
    // than eating the lines around it.
    const end = lines.findIndex((line) => line.startsWith(BLOCK_END))
    const begin = end < 0 ? -1 : lines.slice(0, end).findLastIndex((line) => line.startsWith(BLOCK_BEGIN))
    if (begin < 0) break
    lines.splice(begin, end - begin + 1)
  }
  const next = block + lines.join('')
  return {content: next, changed: next !== content}
}

/** Type and OpenSSH SHA256 fingerprint of a public key line (as `ssh-keygen -l` prints it). */
export function fingerprint(pubLine: string): {type: string; fingerprint: string} | undefined {
  const [type, base64] = pubLine.trim().split(/\s+/)
  const blob = decodeBlob(base64 ?? '')
  if (!blob || blobType(blob) !== type) return undefined
  const digest = createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')
  return {type, fingerprint: `SHA256:${digest}`}
}
