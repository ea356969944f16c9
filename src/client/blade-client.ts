import {ShienError} from '../errors.js'
import {matchBladeSuggestions} from '../install-commands.js'
import {packageInfo} from '../package-info.js'
import {type BladeEvent, parseBladeEvent} from '../protocol/blade-events.js'
import {BLADE_PROTOCOL, type BladeStep, type HelloResult, type SlotHolder, stepArgs, type StepFlags, type StepResult} from '../protocol/blade-steps.js'
import {connect, type Connection, type ConnectOptions} from '../transport/connect.js'
import {type ExecResult, remoteExec} from '../transport/remote-exec.js'

export interface BladeCallOptions {
  signal?: AbortSignal
  /** `@shien` progress events the blade prints on stderr. */
  onEvent?: (event: BladeEvent) => void
  /** Every other stderr line as it comes (ie-docker build's steps). */
  onStderrLine?: (line: string) => void
  /** Sent on the step's stdin (secrets never go in argv); see remoteExec for what abort does then. */
  stdin?: string
  abortGraceMs?: number
}

/** Opens the SSH connection to a blade (known_hosts checked, agent, host-key prompt), runs `work`, and closes it. */
export async function withBlade<T>(access: ConnectOptions, work: (connection: Connection) => Promise<T>): Promise<T> {
  const connection = await connect(access)
  try {
    return await work(connection)
  } finally {
    connection.close()
  }
}

/**
 * The laptop's handle on a blade over one SSH connection: the `shien blade` steps (typed by
 * `protocol/blade-steps.ts`), ie-virsh and ie-docker. All three answer with one JSON object
 * on stdout, `{"error": {...}}` when they refuse, and are read by one parser.
 */
export class BladeClient {
  constructor(
    readonly connection: Connection,
    private readonly bladeCommand = 'shien',
  ) {}

  /** Runs `shien blade STEP` on the blade and returns its result. */
  async call<S extends BladeStep, F extends StepFlags<S>>(step: S, flags: F, opts: BladeCallOptions = {}): Promise<StepResult<S, F>> {
    const argv = [this.bladeCommand, 'blade', step, '--json', '--protocol', String(BLADE_PROTOCOL), ...stepArgs(flags)]
    return this.run<StepResult<S, F>>(argv, {what: `shien blade ${step}`, command: this.bladeCommand}, opts)
  }

  /** Runs `sudo -n ie-virsh ARGS --json` on the blade. */
  async virsh<T>(args: string[], opts: BladeCallOptions = {}): Promise<T> {
    return this.run<T>(['sudo', '-n', 'ie-virsh', ...args, '--json'], {what: `ie-virsh ${args[0]}`, command: 'ie-virsh'}, opts)
  }

  /** Runs `sudo -n ie-docker --json ARGS` on the blade (global options first: after `run`, arguments belong to the container). */
  async docker<T>(args: string[], opts: BladeCallOptions = {}): Promise<T> {
    return this.run<T>(['sudo', '-n', 'ie-docker', '--json', ...args], {what: `ie-docker ${args.find((a) => !a.startsWith('-')) ?? ''}`.trim(), command: 'ie-docker'}, opts)
  }

  /**
   * Takes the slot's push lock on the blade (`shien blade lock`, refused with SLOT_BUSY while
   * another push holds it) and keeps it until `release`, or until this connection goes.
   */
  async lockSlot(slot: string, host: string, signal?: AbortSignal): Promise<SlotLock> {
    const ends = new AbortController()
    let held: (holder: SlotHolder) => void = () => undefined
    const locked = new Promise<SlotHolder>((resolve) => (held = resolve))
    // Its stdin stays open while it holds; ending it (`ends`) is what lets the slot go.
    const step = this.call('lock', {slot, host}, {
      signal: ends.signal,
      stdin: '',
      abortGraceMs: 5000,
      onEvent: (event) => event.type === 'locked' && held(event.holder),
    })
    // How the step ended, never a rejection: it may end (the connection lost) while nobody waits on it.
    const ended = step.then(() => ({error: undefined}), (error: unknown) => ({error}))
    const release = async () => {
      ends.abort()
      await ended
    }
    const onAbort = () => void release()
    signal?.addEventListener('abort', onAbort, {once: true})
    try {
      const first = await Promise.race([locked.then((holder) => ({holder})), ended])
      if ('holder' in first) return {holder: first.holder, release}
      if (signal?.aborted) throw signal.reason
      throw first.error ?? new Error('Internal error: shien blade lock ended without holding the slot.')
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
  }

  /** Checks that the blade speaks our protocol; a mismatch names both versions. */
  async hello(signal?: AbortSignal): Promise<HelloResult> {
    const hello = await this.call('hello', {}, {signal})
    if (hello.protocol !== BLADE_PROTOCOL) {
      throw new ShienError(
        `The blade runs shien ${hello.version} (blade protocol ${hello.protocol}); this laptop runs shien ${packageInfo().version} (protocol ${BLADE_PROTOCOL}).`,
        {code: 'VERSION_MISMATCH', exit: 'remote', suggestions: matchBladeSuggestions(hello.version)},
      )
    }
    return hello
  }

  private async run<T>(argv: string[], who: Who, opts: BladeCallOptions): Promise<T> {
    const result = await remoteExec(this.connection.client, argv, {
      signal: opts.signal,
      stdin: opts.stdin,
      abortGraceMs: opts.abortGraceMs,
      onStderrLine: (line) => {
        const event = parseBladeEvent(line)
        if (event) opts.onEvent?.(event)
        else opts.onStderrLine?.(line)
      },
    })
    return parseReply<T>(result, who)
  }
}

/** A slot's push lock, held on the blade for as long as the push runs. */
export interface SlotLock {
  holder: SlotHolder
  /** Lets the slot go (the lock step's stdin ends) and waits, briefly, for the step to end. */
  release(): Promise<void>
}

/** Which blade program answered, for messages: `what` names the call, `command` the program. */
export interface Who {
  what: string
  command: string
}

interface RemoteErrorBody {
  code?: string
  message?: string
  exitCode?: number
  suggestions?: string[]
}

/**
 * Reads the reply of `shien blade`, ie-virsh or ie-docker: the result object, or its refusal
 * as a ShienError that keeps the blade's code, message and suggestions.
 */
export function parseReply<T>(result: ExecResult, who: Who): T {
  const parsed = parseJson(result.stdout)
  if (parsed && typeof parsed === 'object' && 'error' in parsed) throw remoteError(who.what, (parsed as {error: RemoteErrorBody}).error)
  if (result.code === 0 && parsed !== undefined) return parsed as T
  // A channel closes with neither an exit status nor a signal only when the connection went
  // under it (cut, sshd's session killed, keepalives unanswered): not the blade's fault.
  if ((result.code === undefined || result.code === null) && !result.signal) throw connectionLost(who)
  throw notRunnable(who, result.code, result.stderr)
}

function connectionLost(who: Who): ShienError {
  return new ShienError(`The connection to the blade was lost during ${who.what}: run the same command to resume.`, {
    code: 'CONNECTION_LOST',
    exit: 'connection',
    suggestions: [
      'Run the same command again: the upload is not sent again, and a step the blade finished is not done again.',
      'A silent link is noticed after about 60 s (keepalives every 15 s, three unanswered); on Wi-Fi, a wired network or staying in range helps.',
    ],
  })
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

function remoteError(what: string, body: RemoteErrorBody): ShienError {
  const error = new ShienError(`${body.message ?? 'failed'} (on the blade, ${what})`, {
    code: body.code ?? 'REMOTE_FAILED',
    exit: 'remote',
    suggestions: body.suggestions,
  })
  // Keep the blade's own exit code for usage errors, bad input and refusals: scripts tell them apart.
  if (body.exitCode === 2 || body.exitCode === 3 || body.exitCode === 6) Object.assign(error, {exitCode: body.exitCode})
  return error
}

const INSTALL_HINT: Record<string, string> = {
  shien: 'Ask an admin to install shien on the blade.',
  'ie-virsh': 'Ask an admin to install ie-virsh and its sudo rule on the blade (docs/ie-virsh.md).',
  'ie-docker': 'Ask an admin to install ie-docker and its sudo rule on the blade (docs/ie-docker.md).',
}

function notRunnable(who: Who, code: number | null, stderr: string): ShienError {
  const tail = stderr.split('\n').filter((l) => l && !l.startsWith('@shien ')).slice(-3).join(' | ')
  // 127: not on the PATH; sudo asking for a password: no rule lets the student run it.
  const missing = code === 127 || /command not found|a password is required/.test(stderr)
  return new ShienError(
    missing ? `The blade has no "${who.command}" command that you may run.` : `${who.what} failed on the blade (exit ${code}): ${tail || 'no message'}.`,
    {
      code: missing ? 'BLADE_NOT_INSTALLED' : 'REMOTE_FAILED',
      exit: 'remote',
      suggestions: missing ? [INSTALL_HINT[who.command] ?? INSTALL_HINT.shien] : ['Run it again with --json and show the output to an admin.'],
    },
  )
}
