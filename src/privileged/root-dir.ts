import {randomBytes} from 'node:crypto'
import {constants} from 'node:fs'
import {lstat, mkdir, open, rename, unlink} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'

import {ShienError} from '../errors.js'
import {openExact} from './safe-open.js'

/**
 * Folders on the shared storage that only root writes (the cluster's slot records), and files
 * written into them. Such a folder must be what it claims before anything in it is trusted: a
 * real folder (no symlink anywhere in its path, proven from the opened descriptor), owned by
 * root, writable by no one else. A student can then neither plant a file in it nor swap it, so
 * path operations inside it (rename, unlink) act on root's own files.
 */

/** Makes `dir` (mode `mode`) if it is missing, then checks it is root's and that no one else may write it. */
export async function ensureRootDir(dir: string, mode: number): Promise<void> {
  await mkdir(dir, {mode}).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw unsafe(dir, `it cannot be made (${error.code ?? error.message})`, error)
  })
  // O_NOFOLLOW with O_DIRECTORY reports a symlink as "not a folder": say what it is.
  if ((await lstat(dir)).isSymbolicLink()) throw unsafe(dir, 'it is a symlink')
  const opened = await openExact(dir, {code: 'CLUSTER_DIR', directory: true}).catch((error: unknown) => {
    throw unsafe(dir, error instanceof Error ? error.message.replace(/\.$/, '') : String(error), error)
  })
  try {
    if (opened.stat.uid !== 0) throw unsafe(dir, `it is owned by uid ${opened.stat.uid}, not root`)
    if ((opened.stat.mode & 0o022) !== 0) throw unsafe(dir, `others may write it (mode ${(opened.stat.mode & 0o7777).toString(8)})`)
  } finally {
    await opened.handle.close()
  }
}

/**
 * Replaces `path` (in a folder ensureRootDir checked) with `text` in one step: a temporary file
 * of a fresh name, made with O_EXCL and O_NOFOLLOW (so nothing planted is written through) and
 * flushed, then renamed over `path`. A reader sees the old file or the new one, never half of one.
 * (write-file-atomic does the same without O_EXCL and O_NOFOLLOW.)
 */
export async function writeRootFile(path: string, text: string, mode = 0o644): Promise<void> {
  const c = constants
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
  const handle = await open(temp, c.O_WRONLY | c.O_CREAT | c.O_EXCL | c.O_NOFOLLOW, mode)
  try {
    await handle.writeFile(text)
    await handle.sync()
    await handle.close()
    await rename(temp, path)
  } catch (error) {
    await handle.close().catch(() => undefined)
    await unlink(temp).catch(() => undefined)
    throw error
  }
}

function unsafe(dir: string, why: string, cause?: unknown): ShienError {
  return new ShienError(`${dir} cannot hold the cluster's records: ${why}. It must be a real folder, owned by root, that no one else may write.`, {
    code: 'CLUSTER_DIR_UNSAFE',
    exit: 'remote',
    cause,
    suggestions: ['Ask an admin to check the folder on the shared storage (docs/cluster.md): remove whatever is there in its place, or chown root and chmod go-w it.'],
  })
}
