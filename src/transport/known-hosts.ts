import {createHash, createHmac, randomBytes, timingSafeEqual} from 'node:crypto'
import {appendFile, mkdir, readFile} from 'node:fs/promises'
import {dirname} from 'node:path'

/** What known_hosts says about a host key. */
export type HostKeyVerdict =
  | {status: 'known'; line: number}
  | {status: 'unknown'}
  | {status: 'changed'; line: number; knownType: string}
  | {status: 'revoked'; line: number}

/** The fingerprint OpenSSH prints: `SHA256:` and unpadded base64. */
export function fingerprint(keyBlob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')
}

/** The key type named inside an SSH public key blob (its first string). */
export function keyType(keyBlob: Buffer): string {
  const length = keyBlob.readUInt32BE(0)
  return keyBlob.subarray(4, 4 + length).toString('latin1')
}

/** The name OpenSSH uses for a host in known_hosts: `host`, or `[host]:port` off port 22. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`
}

/**
 * Checks a host key against known_hosts text, as OpenSSH does: plain and hashed (`|1|`) names,
 * wildcards and negations, `@revoked` lines. A different key of the SAME type is a change; a key
 * of another type only is "unknown" (OpenSSH then asks too).
 */
export function checkHostKey(text: string, name: string, keyBlob: Buffer): HostKeyVerdict {
  const type = keyType(keyBlob)
  const blob = keyBlob.toString('base64')
  let changed: HostKeyVerdict | undefined
  const lines = text.split('\n')
  for (const [index, raw] of lines.entries()) {
    const fields = raw.trim().split(/\s+/)
    if (fields[0] === '' || fields[0].startsWith('#')) continue
    const marker = fields[0].startsWith('@') ? fields.shift() : undefined
    // ssh2 cannot negotiate host certificates: a CA line vouches for a host only through
    // OpenSSH's own check of the certificate (host-certificate.ts), never as a plain key.
    if (fields.length < 3 || marker === '@cert-authority') continue
    const [hosts, lineType, lineBlob] = fields
    if (!hostMatches(hosts, name)) continue
    if (marker === '@revoked') {
      if (lineBlob === blob) return {status: 'revoked', line: index + 1}
      continue
    }
    if (lineType === type && lineBlob === blob) return {status: 'known', line: index + 1}
    if (lineType === type) changed ??= {status: 'changed', line: index + 1, knownType: lineType}
  }
  return changed ?? {status: 'unknown'}
}

/** Whether a known_hosts line's names (a hashed `|1|` name, or patterns with `!` negations) match `name`. */
export function hostMatches(patterns: string, name: string): boolean {
  if (patterns.startsWith('|1|')) {
    const [, , salt, hash] = patterns.split('|')
    if (!salt || !hash) return false
    const mac = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest()
    const expected = Buffer.from(hash, 'base64')
    return expected.length === mac.length && timingSafeEqual(expected, mac)
  }
  let matched = false
  for (const pattern of patterns.split(',')) {
    const negated = pattern.startsWith('!')
    if (globMatch(negated ? pattern.slice(1) : pattern, name)) {
      if (negated) return false
      matched = true
    }
  }
  return matched
}

function globMatch(pattern: string, name: string): boolean {
  const regex = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replaceAll('*', '.*').replaceAll('?', '.')
  return new RegExp(`^${regex}$`, 'i').test(name)
}

/**
 * Whether known_hosts text has an entry (not a `@` marker line) that names `name` itself: hashed,
 * or in its list of names. A wildcard pattern that happens to match is not an entry for it.
 */
export function hasHostEntry(text: string, name: string): boolean {
  return text.split('\n').some((line) => {
    const [names = '', ...rest] = line.trim().split(/\s+/)
    if (rest.length < 2 || names.startsWith('#') || names.startsWith('@')) return false
    if (names.startsWith('|1|')) return hostMatches(names, name)
    return names.toLowerCase().split(',').includes(name.toLowerCase())
  })
}

/** Reads known_hosts; a missing file is empty. */
export async function readKnownHosts(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return ''
    throw error
  }
}

/** One known_hosts file's path and text. */
export interface KnownHostsFile {
  path: string
  text: string
}

/**
 * Checks a host key against every known_hosts file OpenSSH would read (UserKnownHostsFile,
 * then GlobalKnownHostsFile): known in any is known; otherwise a revoked or changed entry in
 * any is reported with its file.
 */
export function checkHostKeyFiles(files: KnownHostsFile[], name: string, keyBlob: Buffer): HostKeyVerdict & {path?: string} {
  const verdicts = files.map((file) => ({...checkHostKey(file.text, name, keyBlob), path: file.path}))
  return (
    verdicts.find((v) => v.status === 'revoked') ??
    verdicts.find((v) => v.status === 'known') ??
    verdicts.find((v) => v.status === 'changed') ?? {status: 'unknown'}
  )
}

/** A `@cert-authority` or `@revoked` line that names a host: where it is and its key's fingerprint. */
export interface MarkedKey {
  path: string
  line: number
  /** Which of the names looked up the line matched. */
  name: string
  fingerprint: string
}

/** The lines with `marker` in any of the files whose host patterns match one of `names`. */
export function markedKeys(files: KnownHostsFile[], names: string[], marker: '@cert-authority' | '@revoked'): MarkedKey[] {
  const found: MarkedKey[] = []
  for (const file of files) {
    for (const [index, raw] of file.text.split('\n').entries()) {
      const [mark, hosts, , blob] = raw.trim().split(/\s+/)
      if (mark !== marker || blob === undefined) continue
      const name = names.find((n) => hostMatches(hosts, n))
      if (name !== undefined) found.push({path: file.path, line: index + 1, name, fingerprint: fingerprint(Buffer.from(blob, 'base64'))})
    }
  }
  return found
}

/** Reads the known_hosts files that exist (missing ones are empty). */
export async function readKnownHostsFiles(paths: string[]): Promise<KnownHostsFile[]> {
  return Promise.all(paths.map(async (path) => ({path, text: await readKnownHosts(path)})))
}

/** The `|1|salt|hmac` form of a name that HashKnownHosts writes. */
export function hashedName(name: string, salt: Buffer = randomBytes(20)): string {
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`
}

/**
 * Appends a host key the user accepted, creating the folder (0700) and the file (0600) when
 * needed; hashed when HashKnownHosts is on.
 */
export async function addKnownHost(path: string, name: string, keyBlob: Buffer, hash = false): Promise<void> {
  await mkdir(dirname(path), {recursive: true, mode: 0o700})
  const current = await readKnownHosts(path)
  const prefix = current === '' || current.endsWith('\n') ? '' : '\n'
  const written = hash ? hashedName(name) : name
  await appendFile(path, `${prefix}${written} ${keyType(keyBlob)} ${keyBlob.toString('base64')}\n`, {mode: 0o600})
}
