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
 * so guest-controlled output (file names) cannot forge it. In non-interactive mode guestfish exits
 * on the first failing command, so any error ends the session and rejects the pending call with
 * guestfish's own message. Arguments are always double-quoted with every byte outside a small safe
 * set written as \xHH: guest-controlled strings can never become a second command, a `| shell`
 * pipe or a `!local` command.
 */
import {randomBytes} from 'node:crypto'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {ShienError} from '../errors.js'
import {startSession, type ChildSession} from '../process/run.js'
import {checkFixedAppliance} from './fixed-appliance.js'

/** What lstat says about a guest path; `nlink` > 1 on a file means it is a hard link. */
export interface GuestStat {
  kind: 'file' | 'dir' | 'symlink' | 'other'
  mode: number
  uid: number
  gid: number
  size: number
  nlink: number
}

/** Result of `mountLinuxRoot`: the root device, or why nothing was mounted. */
export type MountResult = {mounted: true; root: string; distro: string} | {mounted: false; reason: string}

let launchesInProcess = 0

/** Appliance launches by every session of this process; tests use it to prove "one launch". */
export function applianceLaunches(): number {
  return launchesInProcess
}

const SAFE_BYTE = /^[A-Za-z0-9/_.,:=+@%-]$/
const COMMAND_NAME = /^[a-z][a-z0-9-]*$/

/** A guestfish double-quoted argument holding exactly the UTF-8 bytes of `arg`. */
export function quoteArg(arg: string): string {
  let out = '"'
  for (const byte of Buffer.from(arg, 'utf8')) {
    if (byte === 0) throw new ShienError('A guestfish argument cannot contain a NUL byte.', {code: 'GUESTFISH_BAD_ARG'})
    const char = String.fromCharCode(byte)
    out += SAFE_BYTE.test(char) ? char : `\\x${byte.toString(16).padStart(2, '0')}`
  }
  return `${out}"`
}

function cancelledError(): ShienError {
  return new ShienError('Stopped: the guestfish session was cancelled.', {code: 'GUESTFISH_CANCELLED', exit: 'cancelled'})
}

interface Pending {
  marker: string
  resolve: (output: string) => void
  reject: (error: Error) => void
}

export class GuestfishSession {
  /** Appliance launches of this session (libguestfs allows at most one per handle). */
  launches = 0
  private readonly marker = `__shien_sync_${randomBytes(12).toString('hex')}__`
  private stdout = Buffer.alloc(0)
  private stderr = ''
  private pending?: Pending
  private exited = false
  private canceled = false
  private queue: Promise<unknown> = Promise.resolve()
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
      if (this.stderr.length < 64 * 1024) this.stderr += chunk.toString('utf8')
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
  call(command: string, ...args: string[]): Promise<string> {
    let line: string
    try {
      if (!COMMAND_NAME.test(command)) throw new ShienError(`Not a guestfish command: ${command}`, {code: 'GUESTFISH_BAD_ARG'})
      line = [command, ...args.map(quoteArg)].join(' ')
    } catch (error) {
      return Promise.reject(error)
    }
    const run = (): Promise<string> => this.send(line)
    const result = this.queue.then(run, run)
    this.queue = result.catch(() => undefined)
    return result
  }

  async lines(command: string, ...args: string[]): Promise<string[]> {
    return (await this.call(command, ...args)).split('\n').filter((l) => l !== '')
  }

  async bool(command: string, ...args: string[]): Promise<boolean> {
    return (await this.call(command, ...args)).trim() === 'true'
  }

  /** lstat of a guest path, or undefined when nothing (not even a dangling symlink) is there. */
  async stat(path: string): Promise<GuestStat | undefined> {
    if (!(await this.bool('is-symlink', path)) && !(await this.bool('exists', path))) return undefined
    const fields = new Map<string, number>()
    for (const line of await this.lines('lstatns', path)) {
      const [key, value] = line.split(': ')
      fields.set(key, Number(value))
    }
    const mode = fields.get('st_mode') ?? 0
    const type = mode & 0o170000
    const kind = type === 0o100000 ? 'file' : type === 0o040000 ? 'dir' : type === 0o120000 ? 'symlink' : 'other'
    const get = (k: string): number => fields.get(k) ?? -1
    return {kind, mode: mode & 0o7777, uid: get('st_uid'), gid: get('st_gid'), size: get('st_size'), nlink: get('st_nlink')}
  }

  /** Exact bytes of a guest file (paths resolve inside the guest). */
  async readFile(path: string): Promise<Buffer> {
    const local = join(this.hostDir, `f${this.fileCounter++}`)
    await this.call('download', path, local)
    try {
      return await readFile(local)
    } finally {
      await rm(local, {force: true})
    }
  }

  /** Writes a guest file in place (an existing file keeps its inode, mode, owner and labels). */
  async writeFile(path: string, data: Buffer | string): Promise<void> {
    const local = join(this.hostDir, `f${this.fileCounter++}`)
    await writeFile(local, data, {mode: 0o600})
    try {
      await this.call('upload', local, path)
    } finally {
      await rm(local, {force: true})
    }
  }

  /**
   * Inspects the guest and mounts its one Linux root with the filesystems its fstab names.
   * Nothing is written when there is no such root, so a refused image stays untouched.
   */
  async mountLinuxRoot(opts: {readonly: boolean}): Promise<MountResult> {
    const roots = await this.lines('inspect-os')
    if (roots.length !== 1) {
      return {mounted: false, reason: roots.length === 0 ? 'no operating system was found' : `${roots.length} operating systems were found (multi-boot is not supported)`}
    }
    const root = roots[0]
    const type = (await this.call('inspect-get-type', root)).trim()
    if (type !== 'linux') return {mounted: false, reason: `the operating system is ${type}, not Linux`}
    const mounts = (await this.lines('inspect-get-mountpoints', root)).map((line) => {
      const at = line.lastIndexOf(': ')
      return {mountpoint: line.slice(0, at), device: line.slice(at + 2)}
    })
    // Parents first: a mountpoint's parent is always a shorter path.
    mounts.sort((a, b) => a.mountpoint.length - b.mountpoint.length)
    for (const {mountpoint, device} of mounts) await this.call(opts.readonly ? 'mount-ro' : 'mount', device, mountpoint)
    const distro = (await this.call('inspect-get-distro', root)).trim()
    return {mounted: true, root, distro}
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

  private send(line: string): Promise<string> {
    if (this.exited) return Promise.reject(this.canceled ? cancelledError() : this.failure('guestfish is not running'))
    return new Promise<string>((resolve, reject) => {
      this.pending = {marker: `${this.marker}\n`, resolve, reject}
      this.child.stdin.write(`${line}\necho ${this.marker}\n`)
    })
  }

  private onStdout(chunk: Buffer): void {
    this.stdout = Buffer.concat([this.stdout, chunk])
    const pending = this.pending
    if (!pending) return
    const text = this.stdout.toString('utf8')
    if (!text.endsWith(pending.marker)) return
    this.stdout = Buffer.alloc(0)
    this.pending = undefined
    pending.resolve(text.slice(0, -pending.marker.length))
  }

  private onExit(canceled: boolean, summary: string): void {
    this.exited = true
    this.canceled = canceled
    const pending = this.pending
    this.pending = undefined
    pending?.reject(canceled ? cancelledError() : this.failure(summary))
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
