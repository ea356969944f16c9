import {ShienError} from '../../errors.js'

/**
 * The folder a publish writes into: local (or a mounted shared disk) or over SFTP. Every
 * path is absolute on the destination. Files arrive under a temporary name and are renamed
 * into place, so a reader sees the old file or the new one, never half of one.
 */
export interface PublishTarget {
  /** How messages name the destination: a path, or sftp://host/path. */
  readonly label: string
  /** Reads a small text file; undefined when it does not exist. */
  readText(path: string, limit: number): Promise<string | undefined>
  /** Creates the folder and its missing parents (mode 0755). */
  mkdirs(path: string): Promise<void>
  /** Creates `path` exclusively; false when it already exists. */
  createExclusive(path: string, text: string): Promise<boolean>
  /** Copies a local file to `path` (written as `tmp`, then renamed by {@link rename}). */
  putFile(localPath: string, tmp: string, opts: PutOptions): Promise<void>
  putText(text: string, tmp: string, mode: number): Promise<void>
  /** Renames over an existing file atomically. */
  rename(from: string, to: string): Promise<void>
  /** Removes a file; a missing one is fine. */
  remove(path: string): Promise<void>
  /** Removes a folder if it is empty; otherwise leaves it. */
  removeEmptyDir(path: string): Promise<void>
  exists(path: string): Promise<boolean>
  /** The names in a folder; undefined when it does not exist, an error when it cannot be read. */
  readDir(path: string): Promise<string[] | undefined>
  /**
   * The first `bytes` bytes of each regular file of `dir` whose name matches, for a folder that
   * others own below the publisher's `trusted` one (a student's images under `users/`): no
   * symlink is followed from `trusted` down, neither to the folder nor to a file in it.
   * undefined when the folder is missing or reached through a symlink (nothing the blade runs is
   * there); an error when it cannot be read.
   */
  readHeads(dir: string, trusted: string, match: RegExp, bytes: number): Promise<FileHead[] | undefined>
  close(): Promise<void>
}

/** A file's first bytes, or why they could not be read; neither when it is not a regular file. */
export interface FileHead {
  name: string
  head?: Buffer
  error?: unknown
}

export interface PutOptions {
  mode: number
  signal?: AbortSignal
  onProgress?: (bytes: number, total: number) => void
}

/** What a failed write means for an instructor, from an errno-like code. */
export function writeError(label: string, path: string, code: string | undefined, cause: unknown): ShienError {
  if (code === 'EACCES' || code === 'EPERM') {
    return new ShienError(`Cannot write ${path} on ${label}: permission denied.`, {
      code: 'PUBLISH_NOT_WRITABLE', exit: 'refused', cause,
      suggestions: ['Ask an admin to let you write the boxes folder (e.g. a group for instructors with write access),', 'or publish to a folder you own.'],
    })
  }
  if (code === 'EROFS') {
    return new ShienError(`Cannot write ${path} on ${label}: the file system is read-only.`, {
      code: 'PUBLISH_NOT_WRITABLE', exit: 'refused', cause,
      suggestions: ['Publish where the shared storage is mounted read-write (on a blade: sftp://blade/...).'],
    })
  }
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new ShienError(`Cannot write ${path} on ${label}: no space left.`, {
      code: 'PUBLISH_DISK_FULL', exit: 'remote', cause, suggestions: ['Remove old versions you no longer need, or ask an admin for space.'],
    })
  }
  return new ShienError(`Cannot write ${path} on ${label}: ${(cause as Error)?.message ?? String(cause)}.`, {
    code: 'PUBLISH_WRITE_FAILED', exit: 'remote', cause,
  })
}
