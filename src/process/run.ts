import {spawn} from 'node:child_process'
import {constants} from 'node:os'
import type {Readable, Writable} from 'node:stream'

import type {Options} from 'execa'

/**
 * The one way shien starts a child process: an argument array (never a shell), a chosen
 * environment, an optional user to run as, a cancel signal, and the exit code as data.
 */

/** What a finished tool run left behind; a non-zero exit is data here, not an exception. */
export interface ToolResult {
  /** The exit code; -1 when the program could not be started or was killed by a signal. */
  exitCode: number
  stdout: string
  stderr: string
  timedOut: boolean
  /** False when the program could not be started at all (not installed: ENOENT). */
  started: boolean
}

/**
 * A user a root-side child runs as: what is done to a student's files is done as that student,
 * so a symlink or a file swapped in by the student reaches only what the student could reach
 * anyway. The child gets exactly this uid and gid and no supplementary groups (libuv clears
 * them when it changes the uid), so it can do less than the student, never more.
 */
export interface RunAs {
  uid: number
  gid: number
}

/** What every way of starting a child takes. */
export interface ProcessOptions {
  signal?: AbortSignal
  timeoutMs?: number
  /** Run as this user instead of this process's: see RunAs. */
  as?: RunAs
  /**
   * `clean` (the default): CLEAN_ENV, for everything that runs as root or for a student.
   * `user`: this process's own environment, for tools a person runs on their own machine
   * (an instructor's qemu-img may live in Homebrew's folder, not in CLEAN_ENV's PATH).
   */
  env?: 'clean' | 'user'
  /** Variables set on top of the environment. */
  extraEnv?: Record<string, string>
  /** The working directory; `/` by default, so no tool works in a folder by accident. */
  cwd?: string
  /** How long a cancelled child has to clean up before it is killed (default 2 s). */
  killAfterMs?: number
}

export interface ToolOptions extends ProcessOptions {
  /** An open file descriptor handed to the child as its fd 3 (so it can name it /dev/fd/3). */
  fd3?: number
  /** Written to the child's stdin, which is then closed. */
  input?: string
}

/**
 * ie-virsh and ie-docker run as root on behalf of a student, so children never see the
 * caller's environment: a fixed PATH (no tool is looked up in a folder the student controls),
 * the C locale (so error texts can be matched), and nothing else, e.g. no LIBVIRT_DEFAULT_URI.
 */
export const CLEAN_ENV = {PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C', LANG: 'C'}

function identity(as: RunAs | undefined): {uid?: number; gid?: number} {
  if (as === undefined) return {}
  if (!Number.isInteger(as.uid) || !Number.isInteger(as.gid) || as.uid < 0 || as.gid < 0) {
    throw new Error(`Cannot run as uid ${as.uid} gid ${as.gid}.`)
  }
  return {uid: as.uid, gid: as.gid}
}

function environment(o: ProcessOptions): Record<string, string | undefined> {
  return {...(o.env === 'user' ? process.env : CLEAN_ENV), ...o.extraEnv}
}

/** The execa options every start shares. */
function common(o: ProcessOptions): Options {
  return {
    env: environment(o),
    extendEnv: false,
    reject: false,
    cancelSignal: o.signal,
    timeout: o.timeoutMs,
    forceKillAfterDelay: o.killAfterMs ?? 2000,
    cwd: o.cwd ?? '/',
    ...identity(o.as),
  }
}

/** execa, loaded by the first child process: many commands start none, and it is slow to load. */
const loadExeca = async () => (await import('execa')).execa

/** Runs a program with an argument array (never a shell) and collects its output. */
export async function runTool(file: string, args: string[], o: ToolOptions = {}): Promise<ToolResult> {
  // execa's types accept integer descriptors only for fds 0-2, but at run time it hands any
  // integer to child_process, which gives the child that descriptor (acl.ts and lock.ts rely
  // on it, and their tests prove it).
  const stdin = o.input === undefined ? 'ignore' : 'pipe'
  const stdio = (o.fd3 === undefined ? [stdin, 'pipe', 'pipe'] : [stdin, 'pipe', 'pipe', o.fd3]) as ['ignore', 'pipe', 'pipe']
  const execa = await loadExeca()
  const result = await execa(file, args, {...common(o), stdio, ...(o.input === undefined ? {} : {input: o.input})})
  if (result.isCanceled) o.signal?.throwIfAborted()
  const started = result.exitCode !== undefined || result.signal !== undefined
  return {
    exitCode: result.exitCode ?? -1,
    stdout: String(result.stdout ?? ''),
    // A program that could not be spawned has no stderr; its reason is in the message.
    stderr: result.exitCode === undefined ? (result.message ?? 'could not run') : String(result.stderr ?? ''),
    timedOut: result.timedOut,
    started,
  }
}

/** The first meaningful line of a tool's stderr, for error messages. */
export function firstErrorLine(stderr: string): string {
  const line = stderr.split('\n').map((l) => l.trim()).find((l) => l.length > 0)
  return line ?? 'no error output'
}

/**
 * Runs a program on this process's own terminal (stdin, stdout and stderr inherited), for
 * `virsh console` (the clean environment) and `shien vm ssh`'s OpenSSH (the user's). Resolves with the exit code, or 128 plus
 * the signal number when a signal ended it (as shells report it).
 */
export function runAttached(file: string, args: string[], o: Pick<ProcessOptions, 'signal' | 'env' | 'cwd'>): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {env: environment(o), stdio: 'inherit', cwd: o.cwd ?? '/', signal: o.signal})
    child.once('error', reject)
    child.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)))
  })
}

/**
 * Runs a program, handing what it prints (stdout and stderr) to `output` as it comes, for
 * long work a person watches (ie-docker build, qemu-img convert, a box recipe). Resolves with
 * the exit code and the last lines printed, for the error message.
 */
export async function runStreaming(
  file: string,
  args: string[],
  o: ProcessOptions & {output: (text: string, stream: 'stdout' | 'stderr') => void},
): Promise<{exitCode: number; timedOut: boolean; tail: string}> {
  let tail = ''
  const keep = (stream: 'stdout' | 'stderr') => (chunk: unknown) => {
    const text = String(chunk)
    o.output(text, stream)
    tail = (tail + text).slice(-4000)
  }
  const execa = await loadExeca()
  const child = execa(file, args, {...common(o), stdio: ['ignore', 'pipe', 'pipe'], buffer: false})
  child.stdout?.on('data', keep('stdout'))
  child.stderr?.on('data', keep('stderr'))
  const result = await child
  if (result.isCanceled) o.signal?.throwIfAborted()
  return {exitCode: result.exitCode ?? -1, timedOut: result.timedOut, tail: result.exitCode === undefined ? (result.message ?? 'could not run') : tail}
}

/** A program driven over its stdin and stdout (guestfish). */
export interface ChildSession {
  stdin: Writable
  stdout: Readable
  stderr: Readable
  /** Settles when the program has exited; never rejects. */
  exited: Promise<{exitCode: number; canceled: boolean; message: string}>
  kill(signal: NodeJS.Signals): void
}

/** Starts a program whose stdin, stdout and stderr the caller drives. */
export async function startSession(file: string, args: string[], o: ProcessOptions = {}): Promise<ChildSession> {
  const execa = await loadExeca()
  const child = execa(file, args, {...common(o), stdin: 'pipe', stdout: 'pipe', stderr: 'pipe', buffer: false})
  const exited = child.then((r) => ({exitCode: r.exitCode ?? -1, canceled: r.isCanceled, message: r.shortMessage ?? `exit status ${r.exitCode}`}))
  return {stdin: child.stdin, stdout: child.stdout, stderr: child.stderr, exited, kill: (signal) => void child.kill(signal)}
}
