/**
 * What goes over guestfish's stdin and comes back on its stdout, as pure functions. Arguments are
 * always double-quoted with every byte outside a small safe set written as \xHH: guest-controlled
 * strings can never become a second command, a `| shell` pipe or a `!local` command. guestfish
 * reads a script in 8 KiB pieces and runs what follows the cut as a new command, so a longer line
 * is refused before it is sent.
 */
import {ShienError} from '../errors.js'

/** What lstat says about a guest path; `nlink` > 1 on a file means it is a hard link. */
export interface GuestStat {
  kind: 'file' | 'dir' | 'symlink' | 'other'
  mode: number
  uid: number
  gid: number
  size: number
  nlink: number
}

const SAFE_BYTE = /^[A-Za-z0-9/_.,:=+@%-]$/
const COMMAND_NAME = /^[a-z][a-z0-9-]*$/
/** Measured with guestfish 1.48: a line of 8192 bytes or more is cut there, the rest run as a command. */
export const MAX_LINE_BYTES = 8000

/** One command line; `-` in front makes a failure not end the session. */
export function commandLine(prefix: '' | '-', command: string, args: (string | Buffer)[]): string {
  if (!COMMAND_NAME.test(command)) throw new ShienError(`Not a guestfish command: ${command}`, {code: 'GUESTFISH_BAD_ARG'})
  const line = prefix + [command, ...args.map(quoteArg)].join(' ')
  if (line.length > MAX_LINE_BYTES) {
    throw new ShienError(`A guestfish command line of ${line.length} bytes is too long (at most ${MAX_LINE_BYTES}): ${line.slice(0, 60)}...`, {code: 'GUESTFISH_BAD_ARG'})
  }
  return line
}

/** A guestfish double-quoted argument holding exactly the UTF-8 bytes of `arg` (or the bytes given). */
export function quoteArg(arg: string | Buffer): string {
  let out = '"'
  for (const byte of typeof arg === 'string' ? Buffer.from(arg, 'utf8') : arg) {
    if (byte === 0) throw new ShienError('A guestfish argument cannot contain a NUL byte.', {code: 'GUESTFISH_BAD_ARG'})
    const char = String.fromCharCode(byte)
    out += SAFE_BYTE.test(char) ? char : `\\x${byte.toString(16).padStart(2, '0')}`
  }
  return `${out}"`
}

/** The fields of a `lstatns`/`statns` answer; undefined for an empty (failed) one. */
export function parseStat(output: string): GuestStat | undefined {
  const fields = new Map<string, number>()
  for (const line of output.split('\n')) {
    const at = line.indexOf(': ')
    if (at > 0) fields.set(line.slice(0, at).trim(), Number(line.slice(at + 2)))
  }
  const mode = fields.get('st_mode')
  if (mode === undefined) return undefined
  const type = mode & 0o170000
  const kind = type === 0o100000 ? 'file' : type === 0o040000 ? 'dir' : type === 0o120000 ? 'symlink' : 'other'
  const get = (k: string): number => fields.get(k) ?? -1
  return {kind, mode: mode & 0o7777, uid: get('st_uid'), gid: get('st_gid'), size: get('st_size'), nlink: get('st_nlink')}
}

/**
 * `bytes` cut into pieces whose quoted form takes at most `room` characters, or undefined when that
 * would take more than a few lines (an upload is as fast then).
 */
export function inlinePieces(bytes: Buffer, room: number): Buffer[] | undefined {
  const pieces: Buffer[] = []
  let start = 0
  let width = 2
  for (let i = 0; i < bytes.length; i++) {
    const cost = SAFE_BYTE.test(String.fromCharCode(bytes[i])) ? 1 : 4
    if (width + cost > room) {
      pieces.push(bytes.subarray(start, i))
      start = i
      width = 2
    }
    width += cost
  }
  pieces.push(bytes.subarray(start))
  return pieces.length <= 8 ? pieces : undefined
}
