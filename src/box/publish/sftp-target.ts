import {posix} from 'node:path'

import type {SFTPWrapper} from 'ssh2'

import {ShienError} from '../../errors.js'
import {connect, type Connection, type NewHostKey} from '../../transport/connect.js'
import {sftpCall} from '../../transport/sftp-call.js'
import type {SshTarget} from '../../transport/ssh-target.js'
import {type FileHead, type PublishTarget, type PutOptions, writeError} from './target.js'
import type {AskPassphrase} from '../../transport/ssh-auth.js'

// SFTP status codes (draft-ietf-secsh-filexfer-02) and how they read as errno codes.
const SFTP_ERRNO: Record<number, string> = {2: 'ENOENT', 3: 'EACCES'}
const POSIX_RENAME = 'posix-rename@openssh.com'

export interface SftpTargetOptions {
  target: SshTarget
  confirmNewHostKey: (key: NewHostKey) => Promise<boolean>
  agentSocket?: string
  /** Asks a key file's passphrase on a terminal. */
  askPassphrase?: AskPassphrase
  signal?: AbortSignal
}

/** A folder on a host reached over SSH (host key checked against known_hosts). */
export class SftpTarget implements PublishTarget {
  private constructor(
    readonly label: string,
    private readonly connection: Connection,
    private readonly sftp: SFTPWrapper,
  ) {}

  static async open(opts: SftpTargetOptions): Promise<SftpTarget> {
    const connection = await connect({
      target: opts.target,
      confirmNewHostKey: opts.confirmNewHostKey,
      agentSocket: opts.agentSocket,
      askPassphrase: opts.askPassphrase,
      signal: opts.signal,
    })
    try {
      const sftp = await sftpCall<SFTPWrapper>((cb) => connection.client.sftp(cb))
      // Without an atomic rename over an existing file, readers could see a missing catalog.
      if (!(sftp as unknown as {_extensions?: Record<string, string>})._extensions?.[POSIX_RENAME]) {
        throw new ShienError(`The SFTP server on ${opts.target.alias} cannot replace files atomically (no ${POSIX_RENAME}).`, {
          code: 'SFTP_NO_ATOMIC_RENAME', exit: 'remote', suggestions: ['Publish with an OpenSSH server, or to the folder as mounted locally.'],
        })
      }
      return new SftpTarget(`${opts.target.user}@${opts.target.alias}`, connection, sftp)
    } catch (error) {
      connection.close()
      throw error
    }
  }

  async readText(path: string, limit: number): Promise<string | undefined> {
    try {
      const stats = await sftpCall<{size: number}>((cb) => this.sftp.stat(path, cb as never))
      if (stats.size > limit) return 'x'.repeat(limit + 1)
      const data = await sftpCall<Buffer>((cb) => this.sftp.readFile(path, cb as never))
      return data.toString('utf8')
    } catch (error) {
      if (errnoOf(error) === 'ENOENT') return undefined
      throw this.fail(path, error)
    }
  }

  async mkdirs(path: string): Promise<void> {
    const missing: string[] = []
    for (let dir = path; dir !== '/' && !(await this.exists(dir)); dir = posix.dirname(dir)) missing.unshift(dir)
    for (const dir of missing) {
      await sftpCall((cb) => this.sftp.mkdir(dir, {mode: 0o755}, cb)).catch(async (error: unknown) => {
        if (!(await this.exists(dir))) throw this.fail(dir, error)
      })
    }
  }

  async createExclusive(path: string, text: string): Promise<boolean> {
    let handle: Buffer
    try {
      handle = await sftpCall<Buffer>((cb) => this.sftp.open(path, 'wx', {mode: 0o644}, cb))
    } catch (error) {
      // OpenSSH answers an existing file with a plain FAILURE; tell it from a refusal by looking.
      if (await this.exists(path)) return false
      throw this.fail(path, error)
    }
    const data = Buffer.from(text)
    await sftpCall((cb) => this.sftp.write(handle, data, 0, data.length, 0, cb as never))
    await sftpCall((cb) => this.sftp.close(handle, cb))
    return true
  }

  async putFile(localPath: string, tmp: string, opts: PutOptions): Promise<void> {
    // A channel of its own: fastPut cannot be cancelled, but ending its channel stops it while
    // the main one stays open to remove the copy and the lock.
    const channel = await sftpCall<SFTPWrapper>((cb) => this.connection.client.sftp(cb))
    const onAbort = () => channel.end()
    opts.signal?.addEventListener('abort', onAbort, {once: true})
    try {
      opts.signal?.throwIfAborted()
      await sftpCall((cb) => channel.fastPut(localPath, tmp, {
        mode: opts.mode, concurrency: 64, chunkSize: 32 * 1024,
        step: (bytes: number, _chunk: number, total: number) => opts.onProgress?.(bytes, total),
      }, cb))
      await sftpCall((cb) => this.sftp.chmod(tmp, opts.mode, cb))
    } catch (error) {
      await this.remove(tmp)
      opts.signal?.throwIfAborted()
      throw this.fail(tmp, error)
    } finally {
      opts.signal?.removeEventListener('abort', onAbort)
      channel.end()
    }
  }

  async putText(text: string, tmp: string, mode: number): Promise<void> {
    try {
      await sftpCall((cb) => this.sftp.writeFile(tmp, text, {mode, flag: 'wx'} as never, cb))
      await sftpCall((cb) => this.sftp.chmod(tmp, mode, cb))
    } catch (error) {
      await this.remove(tmp)
      throw this.fail(tmp, error)
    }
  }

  async rename(from: string, to: string): Promise<void> {
    await sftpCall((cb) => this.sftp.ext_openssh_rename(from, to, cb)).catch((error: unknown) => {
      throw this.fail(to, error)
    })
  }

  async remove(path: string): Promise<void> {
    await sftpCall((cb) => this.sftp.unlink(path, cb)).catch(() => undefined)
  }

  async removeEmptyDir(path: string): Promise<void> {
    await sftpCall((cb) => this.sftp.rmdir(path, cb)).catch(() => undefined)
  }

  async exists(path: string): Promise<boolean> {
    return sftpCall((cb) => this.sftp.stat(path, cb as never)).then(() => true, () => false)
  }

  async readDir(path: string): Promise<string[] | undefined> {
    try {
      const list = await sftpCall<Array<{filename: string}>>((cb) => this.sftp.readdir(path, cb as never))
      return list.map((entry) => entry.filename)
    } catch (error) {
      if (errnoOf(error) === 'ENOENT') return undefined
      throw error
    }
  }

  async readHeads(dir: string, trusted: string, match: RegExp, bytes: number): Promise<FileHead[] | undefined> {
    const below = posix.relative(trusted, dir)
    if (below === '' || below.startsWith('..') || posix.isAbsolute(below)) throw new Error(`Internal error: ${dir} is not below ${trusted}.`)
    // SFTP has no descriptor-relative reads: each folder from `trusted` down is lstat'ed, then
    // used by path. What a swap in between could show is read with the publisher's own rights.
    let folder = trusted
    for (const part of below.split('/')) {
      folder = posix.join(folder, part)
      const stats = await this.lstat(folder)
      if (!stats?.isDirectory()) {
        if (stats === undefined || stats.isSymbolicLink()) return undefined
        throw new Error(`${folder} is not a folder.`)
      }
    }
    const heads: FileHead[] = []
    for (const name of ((await this.readDir(dir)) ?? []).filter((n) => match.test(n))) {
      heads.push(await this.readHead(posix.join(dir, name), bytes).then((head) => ({name, head}), (error: unknown) => ({name, error})))
    }
    return heads
  }

  private async lstat(path: string): Promise<{isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean} | undefined> {
    return sftpCall<{isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean}>((cb) => this.sftp.lstat(path, cb as never)).catch((error: unknown) => {
      if (errnoOf(error) === 'ENOENT') return undefined
      throw error
    })
  }

  private async readHead(path: string, bytes: number): Promise<Buffer | undefined> {
    // lstat first: SFTP has no O_NOFOLLOW, and a symlink is not what the blade would open as an image.
    const stats = await this.lstat(path)
    if (!stats?.isFile()) return undefined
    const handle = await sftpCall<Buffer>((cb) => this.sftp.open(path, 'r', cb))
    try {
      const buf = Buffer.alloc(bytes)
      const read = await sftpCall<number>((cb) => this.sftp.read(handle, buf, 0, bytes, 0, cb as never))
      return buf.subarray(0, read)
    } finally {
      await sftpCall((cb) => this.sftp.close(handle, cb)).catch(() => undefined)
    }
  }

  async close(): Promise<void> {
    this.sftp.end()
    this.connection.close()
  }

  private fail(path: string, error: unknown) {
    return writeError(this.label, path, errnoOf(error), error)
  }
}

function errnoOf(error: unknown): string | undefined {
  const code = (error as {code?: number | string}).code
  if (typeof code === 'number') return SFTP_ERRNO[code]
  if (typeof code === 'string') return code
  return undefined
}
