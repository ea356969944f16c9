/**
 * Adapter: one guestfish process per image, driven over stdin/stdout.
 *
 * Why not `guestfish --listen` + `--remote`: measured with guestfish 1.48, a remote server exits on
 * the first failed command and prints the reason on ITS stderr, so the client only learns "server
 * not running"; and a server outlives a crashed or killed shien, keeping an appliance running on a
 * shared blade. One child process instead dies with us (stdin closes, libguestfs' recovery process
 * kills qemu), is cancelled through the process layer's signal, and its stderr is ours to report.
 *
 * Protocol: each command is followed by `echo <marker>`; the marker is a per-session random token,
 * so guest-controlled output (file names, file contents) cannot forge it. Commands are written as
 * soon as they are called and answered in order, so independent calls made together share one
 * round trip. In non-interactive mode guestfish exits on the first failing command, so any error
 * ends the session and rejects every pending call with guestfish's own message; commands written
 * after the failing one never run. Command lines are made by guestfish-wire.ts.
 */
import {randomBytes} from 'node:crypto'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {ShienError} from '../errors.js'
import {startSession, type ChildSession} from '../process/run.js'
import {checkFixedAppliance} from './fixed-appliance.js'
import {commandLine, inlinePieces, MAX_LINE_BYTES, parseStat, quoteArg, type GuestStat} from './guestfish-wire.js'

export {MAX_LINE_BYTES, quoteArg, type GuestStat} from './guestfish-wire.js'

let launchesInProcess = 0

/** Appliance launches by every session of this process; tests use it to prove "one launch". */
export function applianceLaunches(): number {
  return launchesInProcess
}

/** Files up to this size are read in one `pread` (a direct daemon call); larger ones are downloaded. */
const READ_AT_ONCE = 1024 * 1024
/** Files up to this size are written with `write`/`write-append` lines; larger ones are uploaded. */
const WRITE_INLINE_MAX = 16 * 1024

function cancelledError(): ShienError {
  return new ShienError('Stopped: the guestfish session was cancelled.', {code: 'GUESTFISH_CANCELLED', exit: 'cancelled'})
}

interface Pending {
  resolve: (output: Buffer) => void
  reject: (error: Error) => void
}

export class GuestfishSession {
  /** Appliance launches of this session (libguestfs allows at most one per handle). */
  launches = 0
  private readonly marker = `__shien_sync_${randomBytes(12).toString('hex')}__`
  private readonly markerLine = Buffer.from(`${this.marker}\n`)
  private stdout = Buffer.alloc(0)
  private stderr = ''
  /** Commands written and not yet answered, oldest first. */
  private readonly pending: Pending[] = []
  private exited = false
  private canceled = false
  private fileCounter = 0

  private constructor(
    private readonly child: ChildSession,
    /** Private host directory (0700) for download/upload staging. */
    private readonly hostDir: string,
  ) {
    // A write after guestfish died raises EPIPE here; the exit handler already reports the cause.
    child.stdin.on('error', () => undefined)
    child.stdout.on('data', (chunk: Buffer) => this.onStdout(chunk))
    child.stderr.on('data', (chunk: Buffer) => {
      // The end is kept: it holds the failure, after the reasons of any probes that failed on purpose.
      this.stderr = (this.stderr + chunk.toString('utf8')).slice(-64 * 1024)
    })
    void child.exited.then((result) => this.onExit(result.canceled, result.message))
  }

  /**
   * Starts guestfish with no drive yet; call `addDrive`, then `launch`. `forceTcg` runs the
   * appliance without KVM, where KVM is not usable (the blade's domainType is `qemu`).
   * `memMiB` is the appliance's memory (LIBGUESTFS_MEMSIZE), set in guestfish's environment only.
   * `appliance` is a fixed appliance's folder (LIBGUESTFS_PATH), checked to be root's alone.
   */
  static async start(opts: {signal?: AbortSignal; forceTcg?: boolean; memMiB?: number; appliance?: string} = {}): Promise<GuestfishSession> {
    opts.signal?.throwIfAborted()
    if (opts.memMiB !== undefined && !(Number.isInteger(opts.memMiB) && opts.memMiB >= 256)) {
      throw new ShienError(`The appliance memory must be a whole number of MiB, at least 256 (libguestfs ignores less; got ${opts.memMiB}).`, {code: 'GUESTFISH_BAD_ARG'})
    }
    if (opts.appliance !== undefined) await checkFixedAppliance(opts.appliance)
    const hostDir = await mkdtemp(join(tmpdir(), 'shien-guestfish-'))
    // The libvirt backend would need a libvirt session for an unprivileged student; direct does not.
    const extraEnv: Record<string, string> = {LIBGUESTFS_BACKEND: process.env.LIBGUESTFS_BACKEND ?? 'direct'}
    const settings = process.env.LIBGUESTFS_BACKEND_SETTINGS ?? (opts.forceTcg ? 'force_tcg' : undefined)
    if (settings !== undefined) extraEnv.LIBGUESTFS_BACKEND_SETTINGS = settings
    if (opts.memMiB !== undefined) extraEnv.LIBGUESTFS_MEMSIZE = String(opts.memMiB)
    if (opts.appliance !== undefined) extraEnv.LIBGUESTFS_PATH = opts.appliance
    const child = await startSession('guestfish', [], {env: 'user', extraEnv, cwd: process.cwd(), signal: opts.signal, killAfterMs: 5000})
    return new GuestfishSession(child, hostDir)
  }

  /** Adds the image; `format` is always given so a raw file is never probed as something else. */
  async addDrive(image: string, opts: {format: 'qcow2' | 'raw'; readonly: boolean}): Promise<void> {
    await this.call('add', image, `format:${opts.format}`, `readonly:${opts.readonly}`)
  }

  /** Launches the appliance (the ~15 s step under TCG). */
  async launch(): Promise<void> {
    this.launches++
    launchesInProcess++
    await this.call('run')
  }

  /** Runs one guestfish command and returns its standard output. */
  async call(command: string, ...args: (string | Buffer)[]): Promise<string> {
    return (await this.callBytes(command, ...args)).toString('utf8')
  }

  /** Like `call`, with the output's exact bytes (a `pread` of a guest file). */
  callBytes(command: string, ...args: (string | Buffer)[]): Promise<Buffer> {
    return this.line('', command, args)
  }

  /**
   * Runs a command whose failure does not end the session (guestfish's `-` prefix); its output, or
   * '' when it failed. Only for probes where a failure means "no": the reason goes to stderr.
   */
  async tryCall(command: string, ...args: (string | Buffer)[]): Promise<string> {
    return (await this.line('-', command, args)).toString('utf8')
  }

  private line(prefix: '' | '-', command: string, args: (string | Buffer)[]): Promise<Buffer> {
    try {
      return this.send(commandLine(prefix, command, args))
    } catch (error) {
      return Promise.reject(error)
    }
  }

  async lines(command: string, ...args: string[]): Promise<string[]> {
    return (await this.call(command, ...args)).split('\n').filter((l) => l !== '')
  }

  async bool(command: string, ...args: string[]): Promise<boolean> {
    return (await this.call(command, ...args)).trim() === 'true'
  }

  /**
   * lstat of a guest path, or undefined when nothing (not even a dangling symlink) is there, or
   * when it cannot be looked up at all (a parent that is not a directory, a symlink loop), as for
   * the guest's own programs. One C call in the daemon: its `is-symlink`, `is-dir`, `is-file` and
   * `realpath` fork a chroot helper each, about 10 ms under TCG.
   */
  async stat(path: string): Promise<GuestStat | undefined> {
    return parseStat(await this.tryCall('lstatns', path))
  }

  /** Like `stat`, symlinks followed (a dangling one is undefined). */
  async statFollowed(path: string): Promise<GuestStat | undefined> {
    return parseStat(await this.tryCall('statns', path))
  }

  /**
   * Exact bytes of a guest file (paths resolve inside the guest). `pread` answers in one daemon
   * call; `download` (and `read-file`, built on it) costs about 150 ms per file under TCG.
   */
  async readFile(path: string): Promise<Buffer> {
    const head = await this.callBytes('pread', path, String(READ_AT_ONCE), '0')
    // A regular file's pread comes back short only at its end.
    if (head.length < READ_AT_ONCE) return head
    const local = join(this.hostDir, `f${this.fileCounter++}`)
    await this.call('download', path, local)
    try {
      return await readFile(local)
    } finally {
      await rm(local, {force: true})
    }
  }

  /**
   * Writes a guest file in place (an existing file keeps its inode, mode, owner and labels): small
   * ones as `write` and `write-append` lines sent together (both open the file as `upload` does,
   * O_TRUNC or O_APPEND, never replacing it), others, and any holding a NUL byte, by `upload`.
   */
  async writeFile(path: string, data: Buffer | string): Promise<void> {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data
    const pieces = bytes.length <= WRITE_INLINE_MAX && !bytes.includes(0) ? inlinePieces(bytes, MAX_LINE_BYTES - 32 - quoteArg(path).length) : undefined
    if (pieces) {
      await Promise.all(pieces.map((piece, i) => this.call(i === 0 ? 'write' : 'write-append', path, piece)))
      return
    }
    const local = join(this.hostDir, `f${this.fileCounter++}`)
    await writeFile(local, bytes, {mode: 0o600})
    try {
      await this.call('upload', local, path)
    } finally {
      await rm(local, {force: true})
    }
  }

  /** Orderly shutdown (flushes the disk), then exit; throws if guestfish reports a failure. */
  async close(): Promise<void> {
    try {
      if (this.launches > 0 && !this.exited) await this.call('shutdown')
      if (!this.exited) this.child.stdin.end('exit\n')
      const result = await this.child.exited
      if (result.exitCode !== 0 && !result.canceled) throw this.failure(`exit status ${result.exitCode}`)
    } finally {
      await rm(this.hostDir, {recursive: true, force: true})
    }
  }

  /**
   * Ends the session on an error path. `exit` (not a signal) lets libguestfs stop qemu and wait for
   * it, so the image's write lock is free when this returns and the caller can retry at once;
   * SIGTERM only if that hangs. After a cancel, libguestfs' recovery process kills qemu instead.
   */
  async kill(): Promise<void> {
    if (!this.exited) {
      this.child.stdin.end('exit\n')
      const timer = setTimeout(() => this.child.kill('SIGTERM'), 30_000)
      await this.child.exited
      clearTimeout(timer)
    }
    await this.child.exited
    await rm(this.hostDir, {recursive: true, force: true})
  }

  private send(line: string): Promise<Buffer> {
    if (this.exited) return Promise.reject(this.canceled ? cancelledError() : this.failure('guestfish is not running'))
    return new Promise<Buffer>((resolve, reject) => {
      this.pending.push({resolve, reject})
      this.child.stdin.write(`${line}\necho ${this.marker}\n`)
    })
  }

  private onStdout(chunk: Buffer): void {
    this.stdout = Buffer.concat([this.stdout, chunk])
    for (let at = this.stdout.indexOf(this.markerLine); at >= 0 && this.pending.length > 0; at = this.stdout.indexOf(this.markerLine)) {
      const output = this.stdout.subarray(0, at)
      this.stdout = this.stdout.subarray(at + this.markerLine.length)
      this.pending.shift()!.resolve(Buffer.from(output))
    }
  }

  private onExit(canceled: boolean, summary: string): void {
    this.exited = true
    this.canceled = canceled
    for (const pending of this.pending.splice(0)) pending.reject(canceled ? cancelledError() : this.failure(summary))
  }

  private failure(what: string): ShienError {
    const detail = this.stderr.trim().split('\n').slice(-5).join('\n') || what
    return new ShienError(`guestfish failed: ${detail}`, {
      code: 'GUESTFISH_FAILED',
      exit: 'remote',
      suggestions: ['Check that the image is not in use by a running VM, and that libguestfs works: libguestfs-test-tool'],
    })
  }
}
