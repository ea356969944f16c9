import {constants, createReadStream, createWriteStream, existsSync} from 'node:fs'
import {access, chmod, type FileHandle, lstat, mkdir, open, readdir, readFile, readlink, realpath, rename, rm, rmdir, stat} from 'node:fs/promises'
import {dirname, isAbsolute, join, relative, sep} from 'node:path'
import {Transform} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import {type FileHead, type PublishTarget, type PutOptions, writeError} from './target.js'

/** A local folder, or the shared storage as mounted on this machine. */
export class LocalTarget implements PublishTarget {
  readonly label = 'this machine'

  async readText(path: string, limit: number): Promise<string | undefined> {
    try {
      // Longer than the limit tells the caller it is too large without reading it all.
      if ((await stat(path)).size > limit) return 'x'.repeat(limit + 1)
      return await readFile(path, 'utf8')
    } catch (error) {
      if ((error as {code?: string}).code === 'ENOENT') return undefined
      throw this.fail(path, error)
    }
  }

  async mkdirs(path: string): Promise<void> {
    const missing: string[] = []
    for (let dir = path; !(await exists(dir)); dir = dirname(dir)) missing.unshift(dir)
    for (const dir of missing) {
      try {
        await mkdir(dir, {mode: 0o755})
        // The instructor's umask must not hide the folder from the web server.
        await chmod(dir, 0o755)
      } catch (error) {
        if ((error as {code?: string}).code !== 'EEXIST') throw this.fail(dir, error)
      }
    }
    // An existing folder the instructor cannot write: say so now, before any work.
    await access(path, constants.W_OK | constants.X_OK).catch((error: unknown) => {
      throw this.fail(path, error)
    })
  }

  async createExclusive(path: string, text: string): Promise<boolean> {
    try {
      const handle = await open(path, 'wx', 0o644)
      await handle.writeFile(text).finally(() => handle.close())
      return true
    } catch (error) {
      if ((error as {code?: string}).code === 'EEXIST') return false
      throw this.fail(path, error)
    }
  }

  async putFile(localPath: string, tmp: string, opts: PutOptions): Promise<void> {
    const total = (await stat(localPath)).size
    let bytes = 0
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        bytes += chunk.length
        opts.onProgress?.(bytes, total)
        callback(null, chunk)
      },
    })
    try {
      await pipeline(createReadStream(localPath), meter, createWriteStream(tmp, {flags: 'wx', mode: opts.mode}), {signal: opts.signal})
      await chmod(tmp, opts.mode)
    } catch (error) {
      await rm(tmp, {force: true})
      opts.signal?.throwIfAborted()
      throw this.fail(tmp, error)
    }
  }

  async putText(text: string, tmp: string, mode: number): Promise<void> {
    try {
      const handle = await open(tmp, 'wx', mode)
      // Flushed before the rename, so a crash cannot leave an empty catalog in place.
      await handle.writeFile(text).then(() => handle.sync()).finally(() => handle.close())
      await chmod(tmp, mode)
    } catch (error) {
      await rm(tmp, {force: true})
      throw this.fail(tmp, error)
    }
  }

  async rename(from: string, to: string): Promise<void> {
    await rename(from, to).catch((error: unknown) => {
      throw this.fail(to, error)
    })
  }

  async remove(path: string): Promise<void> {
    await rm(path, {force: true})
  }

  async removeEmptyDir(path: string): Promise<void> {
    await rmdir(path).catch(() => undefined)
  }

  exists(path: string): Promise<boolean> {
    return exists(path)
  }

  async readDir(path: string): Promise<string[] | undefined> {
    return readdir(path).catch((error: unknown) => {
      if ((error as {code?: string}).code === 'ENOENT') return undefined
      throw error
    })
  }

  async readHeads(dir: string, trusted: string, match: RegExp, bytes: number): Promise<FileHead[] | undefined> {
    const below = relative(trusted, dir)
    if (below === '' || below.startsWith('..') || isAbsolute(below)) throw new Error(`Internal error: ${dir} is not below ${trusted}.`)
    // The trusted folder is the publisher's (root's on a blade): links in its own path are the admin's.
    const expected = join(await realpath(trusted), below)
    let folder: FileHandle
    try {
      folder = await open(expected, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
    } catch (error) {
      const code = (error as {code?: string}).code ?? ''
      // O_DIRECTORY with O_NOFOLLOW says ENOTDIR for a link, as for a file.
      if (code === 'ENOENT' || code === 'ELOOP') return undefined
      if (code === 'ENOTDIR' && (await lstat(expected).catch(() => undefined))?.isSymbolicLink()) return undefined
      throw error
    }
    try {
      // On Linux (every blade) the folder is read through its descriptor: once opened, swapping
      // it or its parent for a link changes nothing. Elsewhere each folder is lstat'ed first.
      const via = PROC_FD ? `/proc/self/fd/${folder.fd}` : expected
      if (PROC_FD ? (await readlink(via)) !== expected : await linkOnTheWay(expected, below)) return undefined
      const heads: FileHead[] = []
      for (const name of (await readdir(via)).filter((n) => match.test(n))) {
        heads.push(await readHead(join(via, name), bytes).then((head) => ({name, head}), (error: unknown) => ({name, error})))
      }
      return heads
    } finally {
      await folder.close()
    }
  }

  async close(): Promise<void> {}

  private fail(path: string, error: unknown) {
    return writeError(this.label, path, (error as {code?: string}).code, error)
  }
}

const PROC_FD = existsSync('/proc/self/fd')

/** Whether a folder of `path`'s last `below` components is a symlink. */
async function linkOnTheWay(path: string, below: string): Promise<boolean> {
  let dir = path
  for (let i = below.split(sep).length; i > 0; i--, dir = dirname(dir)) {
    if ((await lstat(dir)).isSymbolicLink()) return true
  }
  return false
}

/** The first `bytes` bytes of a regular file, not following a symlink; undefined for anything else. */
async function readHead(path: string, bytes: number): Promise<Buffer | undefined> {
  let handle
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  } catch (error) {
    if (['ENOENT', 'ELOOP'].includes((error as {code?: string}).code ?? '')) return undefined
    throw error
  }
  try {
    if (!(await handle.stat()).isFile()) return undefined
    const buf = Buffer.alloc(bytes)
    const {bytesRead} = await handle.read(buf, 0, bytes, 0)
    return buf.subarray(0, bytesRead)
  } finally {
    await handle.close()
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch {
    return false
  }
}
