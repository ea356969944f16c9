import {spawn} from 'node:child_process'
import {constants} from 'node:os'

import {execa} from 'execa'

/** What a finished tool run left behind; a non-zero exit is data here, not an exception. */
export interface ToolResult {
  exitCode: number
  stdout: string
  stderr: string
  timedOut: boolean
}

export interface ToolOptions {
  signal?: AbortSignal
  timeoutMs?: number
  /** An open file descriptor handed to the child as its fd 3 (so it can name it /dev/fd/3). */
  fd3?: number
  /** Run as this user instead of root: see RunAs. */
  as?: RunAs
  /**
   * `clean` (the default): CLEAN_ENV, for everything that runs as root or for a student.
   * `user`: this process's own environment, for tools a person runs on their own machine
   * (an instructor's qemu-img may live in Homebrew's folder, not in CLEAN_ENV's PATH).
   */
  env?: 'clean' | 'user'
}

function environment(env: 'clean' | 'user' | undefined): {env: Record<string, string | undefined>; extendEnv: boolean} {
  return env === 'user' ? {env: process.env, extendEnv: false} : {env: CLEAN_ENV, extendEnv: false}
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

function identity(as: RunAs | undefined): {uid?: number; gid?: number} {
  if (as === undefined) return {}
  // Never "as root" by accident: a caller whose uid is 0 is root itself, and runs as such.
  if (!Number.isInteger(as.uid) || !Number.isInteger(as.gid) || as.uid < 0 || as.gid < 0) {
    throw new Error(`Cannot run as uid ${as.uid} gid ${as.gid}.`)
  }
  return {uid: as.uid, gid: as.gid}
}

/**
 * ie-virsh and ie-docker run as root on behalf of a student, so children never see the
 * caller's environment: a fixed PATH (no tool is looked up in a folder the student controls),
 * the C locale (so error texts can be matched), and nothing else, e.g. no LIBVIRT_DEFAULT_URI.
 */
export const CLEAN_ENV = {PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C', LANG: 'C'}

/** Runs a program with an argument array (never a shell) and collects its output. */
export async function runTool(file: string, args: string[], o: ToolOptions = {}): Promise<ToolResult> {
  // execa's types accept integer descriptors only for fds 0-2, but at run time it hands any
  // integer to child_process, which gives the child that descriptor (acl.ts and lock.ts rely
  // on it, and their tests prove it).
  const stdio = (o.fd3 === undefined ? ['ignore', 'pipe', 'pipe'] : ['ignore', 'pipe', 'pipe', o.fd3]) as [
    'ignore',
    'pipe',
    'pipe',
  ]
  const result = await execa(file, args, {
    ...environment(o.env),
    reject: false,
    stdio,
    cancelSignal: o.signal,
    timeout: o.timeoutMs,
    forceKillAfterDelay: 2000,
    cwd: '/',
    ...identity(o.as),
  })
  if (result.isCanceled) o.signal?.throwIfAborted()
  return {
    exitCode: result.exitCode ?? -1,
    stdout: String(result.stdout ?? ''),
    // A program that could not be spawned has no stderr; its reason is in the message.
    stderr: result.exitCode === undefined ? (result.message ?? 'could not run') : String(result.stderr ?? ''),
    timedOut: result.timedOut,
  }
}

/** The first meaningful line of a tool's stderr, for error messages. */
export function firstErrorLine(stderr: string): string {
  const line = stderr.split('\n').map((l) => l.trim()).find((l) => l.length > 0)
  return line ?? 'no error output'
}

/**
 * Runs a program on this process's own terminal (stdin, stdout and stderr inherited), for
 * `virsh console`, with the same clean environment. Resolves with the exit code, or 128 plus
 * the signal number when a signal ended it (as shells report it).
 */
export function runAttached(file: string, args: string[], o: {signal?: AbortSignal}): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {env: CLEAN_ENV, stdio: 'inherit', cwd: '/', signal: o.signal})
    child.once('error', reject)
    child.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)))
  })
}

/**
 * Runs a program with the clean environment, handing what it prints (stdout and stderr) to
 * `output` as it comes, for long work a person watches (ie-docker build). Resolves with the
 * exit code and the last lines printed, for the error message.
 */
export async function runStreaming(
  file: string,
  args: string[],
  o: {signal?: AbortSignal; timeoutMs?: number; output: (text: string) => void; as?: RunAs; env?: 'clean' | 'user'},
): Promise<{exitCode: number; timedOut: boolean; tail: string}> {
  let tail = ''
  const keep = (chunk: unknown) => {
    const text = String(chunk)
    o.output(text)
    tail = (tail + text).slice(-4000)
  }
  const child = execa(file, args, {
    ...environment(o.env),
    reject: false,
    stdio: ['ignore', 'pipe', 'pipe'],
    cancelSignal: o.signal,
    timeout: o.timeoutMs,
    forceKillAfterDelay: 2000,
    cwd: '/',
    buffer: false,
    ...identity(o.as),
  })
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  const result = await child
  if (result.isCanceled) o.signal?.throwIfAborted()
  return {exitCode: result.exitCode ?? -1, timedOut: result.timedOut, tail: result.exitCode === undefined ? (result.message ?? 'could not run') : tail}
}
