import {constants, type Stats} from 'node:fs'
import {open, readlink, type FileHandle} from 'node:fs/promises'

import {ShienError, badInput} from '../errors.js'

/** An open file or folder whose path was verified after opening, plus its fstat. */
export interface OpenedPath {
  handle: FileHandle
  stat: Stats
  path: string
}

export interface OpenExactOptions {
  directory?: boolean
  /** Create the file (mode 0600) if it is missing; for the lock file only. */
  create?: boolean
  /** Prefix of the error codes when the path is refused: IMAGE gives IMAGE_MISSING, IMAGE_SYMLINK... */
  code: string
}

/**
 * Opens `path` as root without following any symlink, then confirms from the kernel which
 * file it actually opened. The student owns the folders involved and can swap a component for
 * a symlink at any moment: O_NOFOLLOW guards only the last one, so the path the kernel reports
 * for the descriptor (/proc/self/fd) must equal the expected path, which rules out a symlinked
 * parent too. From then on the descriptor, not the path, is used: it cannot be swapped.
 * O_NONBLOCK keeps a FIFO planted in place of the file from hanging the open.
 */
export async function openExact(path: string, o: OpenExactOptions): Promise<OpenedPath> {
  const c = constants
  // Read-only even for the lock file: flock(2) does not need write access.
  let flags = c.O_RDONLY | c.O_NOFOLLOW | c.O_NONBLOCK | c.O_NOCTTY
  if (o.directory) flags |= c.O_DIRECTORY
  if (o.create) flags |= c.O_CREAT
  let handle: FileHandle
  try {
    handle = await open(path, flags, 0o600)
  } catch (error) {
    throw openRefused(path, o.code, error as NodeJS.ErrnoException)
  }
  try {
    const actual = await readlink(`/proc/self/fd/${handle.fd}`)
    if (actual !== path) {
      throw badInput(`${o.code}_SYMLINK`, `${path} resolves to ${actual}: symlinks are not allowed in this path.`, [
        'Replace the symlinked folder with a real one.',
      ])
    }
    const stat = await handle.stat()
    if (o.directory ? !stat.isDirectory() : !stat.isFile()) {
      throw badInput(`${o.code}_NOT_FILE`, `${path} is not a ${o.directory ? 'folder' : 'regular file'}.`)
    }
    return {handle, stat, path}
  } catch (error) {
    await handle.close()
    throw error
  }
}

function openRefused(path: string, code: string, error: NodeJS.ErrnoException): ShienError {
  if (error.code === 'ENOENT') return badInput(`${code}_MISSING`, `${path} does not exist.`)
  if (error.code === 'ELOOP') {
    return badInput(`${code}_SYMLINK`, `${path} is a symlink; only real files are accepted here.`, [
      'Replace it with the file itself.',
    ])
  }
  if (error.code === 'ENOTDIR') return badInput(`${code}_NOT_FILE`, `A part of ${path} is not a folder.`)
  return new ShienError(`Cannot open ${path}: ${error.message}.`, {code: `${code}_UNREADABLE`, exit: 'remote', cause: error})
}
