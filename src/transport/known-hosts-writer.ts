import {randomBytes} from 'node:crypto'
import {chmod, mkdir, open, realpath, rename, rm, stat} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'

import {ShienError} from '../errors.js'
import {hashedName, hostMatches, keyType, readKnownHosts} from './known-hosts.js'

// Host key types a guest's sshd offers (ssh-keygen -A); certificates and security keys are not host keys here.
const HOST_KEY_TYPES = new Set(['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'ssh-rsa'])

/** A host's public key, as a known_hosts line holds it after the names. */
export interface HostPublicKey {
  type: string
  /** The key blob, base64. */
  blob: string
}

/**
 * Reads `TYPE BASE64 [comment]` (a `.pub` file's line) strictly: a host key type, and a blob
 * whose own type is the one named. Anything else is refused (it comes from the blade).
 */
export function parseHostPublicKey(line: string): HostPublicKey {
  const [type = '', blob = ''] = line.trim().split(/\s+/)
  const bytes = /^[A-Za-z0-9+/]+={0,2}$/.test(blob) ? Buffer.from(blob, 'base64') : Buffer.alloc(0)
  let inner = ''
  try {
    inner = bytes.length > 4 ? keyType(bytes) : ''
  } catch {
    inner = ''
  }
  // One line: a newline would carry another host's entry into known_hosts.
  if (/[\x00-\x1f\x7f]/.test(line.replace(/\t/g, ' ')) || !HOST_KEY_TYPES.has(type) || inner !== type || bytes.toString('base64') !== blob) {
    throw new ShienError(`The blade sent a host key that is not one: ${JSON.stringify(line.slice(0, 80))}.`, {
      code: 'HOST_KEYS_INVALID',
      exit: 'remote',
      suggestions: ['Push the VM again; if it keeps happening, send this message to an admin.'],
    })
  }
  return {type, blob}
}

/** Whether a known_hosts line is a plain (unmarked) entry whose only name is `name`, plain or hashed. */
function isEntryOnlyFor(line: string, name: string): boolean {
  const fields = line.trim().split(/\s+/)
  if (fields.length < 3 || fields[0].startsWith('#') || fields[0].startsWith('@')) return false
  const names = fields[0]
  if (names.startsWith('|1|')) return hostMatches(names, name)
  return names.toLowerCase() === name.toLowerCase()
}

/**
 * known_hosts text with every entry of `name` alone replaced by `keys`: other lines (other
 * hosts, `@revoked` and `@cert-authority` lines, lines that list more names) stay as they were
 * and where they were; the new lines go where the first old one was, else at the end.
 */
export function replaceHostEntries(text: string, name: string, keys: HostPublicKey[], hash: boolean): {text: string; removed: number} {
  const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n')
  const fresh = keys.map((k) => `${hash ? hashedName(name) : name} ${k.type} ${k.blob}`)
  const out: string[] = []
  let removed = 0
  for (const line of lines) {
    if (!isEntryOnlyFor(line, name)) {
      out.push(line)
      continue
    }
    if (removed === 0) out.push(...fresh)
    removed += 1
  }
  if (removed === 0) out.push(...fresh)
  return {text: out.length === 0 ? '' : `${out.join('\n')}\n`, removed}
}

/**
 * Records `keys` as the only keys of `name` in the known_hosts file at `path` (replaceHostEntries),
 * hashed when HashKnownHosts is on. The file is written whole to a temporary name beside it and
 * renamed over it, so a reader never sees half a file; it keeps its mode (0600 when new), and a
 * symlinked known_hosts is written where the link points.
 */
export async function recordHostKeys(path: string, name: string, keyLines: string[], o: {hash: boolean}): Promise<{path: string; removed: number; added: number}> {
  const keys = keyLines.map(parseHostPublicKey)
  if (keys.length === 0) throw new ShienError(`No host keys to record for ${name}.`, {code: 'HOST_KEYS_INVALID', exit: 'remote'})
  const real = await realpath(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return path
    throw error
  })
  await mkdir(dirname(real), {recursive: true, mode: 0o700})
  const mode = await stat(real).then((s) => s.mode & 0o7777, () => 0o600)
  const next = replaceHostEntries(await readKnownHosts(real), name, keys, o.hash)
  const temp = join(dirname(real), `.${basename(real)}.shien-${randomBytes(6).toString('hex')}`)
  try {
    const file = await open(temp, 'wx', 0o600)
    try {
      await file.writeFile(next.text)
      await file.sync()
    } finally {
      await file.close()
    }
    await chmod(temp, mode)
    await rename(temp, real)
  } catch (error) {
    await rm(temp, {force: true})
    throw new ShienError(`Cannot write ${real}: ${(error as Error).message}.`, {
      code: 'KNOWN_HOSTS_WRITE',
      exit: 'failure',
      suggestions: [`Check that you can write to ${dirname(real)}.`],
      cause: error,
    })
  }
  return {path: real, removed: next.removed, added: keys.length}
}
