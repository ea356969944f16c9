import {badInput, type ShienError} from '../errors.js'

/** One entry of a box archive, after validation. */
export interface BoxEntry {
  /** Path inside the box, normalised: no leading `./`, no empty or `.` segments, no trailing `/`. */
  name: string
  /** Bytes of content (0 for directories). */
  size: number
  type: 'file' | 'directory'
}

/** The fields of a tar-stream header that decide whether an entry is safe. */
export interface TarHeader {
  name: string
  size?: number
  /** tar-stream's type name; null for type flags it does not know (GNU sparse, volume labels). */
  type: string | null
}

const REFUSED_TYPES: Record<string, string> = {
  symlink: 'it is a symbolic link',
  link: 'it is a hard link',
  'character-device': 'it is a character device',
  'block-device': 'it is a block device',
  fifo: 'it is a FIFO (named pipe)',
}

/**
 * Checks one tar header and returns the entry it describes, or undefined for the archive's
 * own root directory (`./`), which `tar -C dir .` writes and which names nothing.
 * Throws `BOX_UNSAFE_ENTRY` for anything that could write outside the folder the box is
 * unpacked into, or that is not a plain file or directory.
 * `seen` collects the names so far: the same path twice lets a later entry replace a checked one.
 */
export function checkEntryHeader(header: TarHeader, seen: Set<string>): BoxEntry | undefined {
  const raw = header.name
  const type = header.type
  if (type !== 'file' && type !== 'directory') {
    throw unsafe(raw, (type && REFUSED_TYPES[type]) ?? `its tar type (${type ?? 'unknown'}) is not a regular file or directory`)
  }
  const name = normaliseEntryName(raw)
  if (name === '') {
    if (type === 'directory') return undefined
    throw unsafe(raw, 'it has an empty name')
  }
  if (seen.has(name)) throw unsafe(raw, 'the box already has an entry with this name, and the second would replace the first')
  seen.add(name)
  return {name, size: type === 'file' ? header.size ?? 0 : 0, type}
}

/** Strips `./`, empty segments and a trailing `/`; refuses absolute paths and `..`. */
export function normaliseEntryName(raw: string): string {
  if (raw.startsWith('/') || /^[A-Za-z]:[\\/]/.test(raw)) throw unsafe(raw, 'it is an absolute path')
  if (raw.includes('\0')) throw unsafe(raw, 'its name contains a NUL byte')
  const segments = raw.split(/[\\/]/)
  if (segments.includes('..')) throw unsafe(raw, 'its path has a ".." component that points outside the box')
  if (raw.includes('\\')) throw unsafe(raw, 'its name contains a backslash, which some tools read as a folder separator')
  return segments.filter((segment) => segment !== '' && segment !== '.').join('/')
}

function unsafe(name: string, why: string): ShienError {
  return badInput('BOX_UNSAFE_ENTRY', `The box has an unsafe entry "${name}": ${why}. shien refuses such boxes.`, [
    'Package the box again with "vagrant package", or build it with tar from a folder holding only regular files.',
  ])
}
