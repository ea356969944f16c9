import {ShienError} from '../errors.js'
import {BLADE_PROTOCOL, type BladeEvent, parseBladeEvent, PACKAGE_VERSION} from '../blade/protocol.js'
import type {Connection} from '../transport/connect.js'
import {remoteExec} from '../transport/remote-exec.js'

export interface BladeCallOptions {
  signal?: AbortSignal
  onEvent?: (event: BladeEvent) => void
  /** Sent on the step's stdin (secrets never go in argv); see remoteExec for what abort does then. */
  stdin?: string
  abortGraceMs?: number
}

/** The laptop's handle on the blade side of shien and on ie-virsh, over one SSH connection. */
export class BladeClient {
  constructor(
    readonly connection: Connection,
    private readonly bladeCommand = 'shien',
  ) {}

  /** Runs `shien blade STEP` on the blade and returns its JSON result. */
  async call<T>(step: string, flags: Record<string, string | number | boolean | undefined>, opts: BladeCallOptions = {}): Promise<T> {
    const argv = [this.bladeCommand, 'blade', step, '--json', '--protocol', String(BLADE_PROTOCOL)]
    for (const [name, value] of Object.entries(flags)) {
      if (value === undefined || value === false) continue
      argv.push(`--${name}`)
      if (value !== true) argv.push(String(value))
    }
    return this.run<T>(argv, `shien blade ${step}`, opts)
  }

  /** Runs `sudo -n ie-virsh ARGS --json` on the blade. */
  async virsh<T>(args: string[], opts: BladeCallOptions = {}): Promise<T> {
    return this.run<T>(['sudo', '-n', 'ie-virsh', ...args, '--json'], `ie-virsh ${args[0]}`, opts)
  }

  /** Checks that the blade speaks our protocol; a mismatch names both versions. */
  async hello(signal?: AbortSignal): Promise<{version: string; protocol: number; account: string; home: string}> {
    const hello = await this.call<{version: string; protocol: number; account: string; home: string}>('hello', {}, {signal})
    if (hello.protocol !== BLADE_PROTOCOL) {
      throw new ShienError(
        `The blade runs shien ${hello.version} (blade protocol ${hello.protocol}); this laptop runs shien ${PACKAGE_VERSION} (protocol ${BLADE_PROTOCOL}).`,
        {code: 'VERSION_MISMATCH', exit: 'remote', suggestions: [`Install shien ${hello.version} on this laptop, or ask an admin to update the blade.`]},
      )
    }
    return hello
  }

  private async run<T>(argv: string[], what: string, opts: BladeCallOptions): Promise<T> {
    const result = await remoteExec(this.connection.client, argv, {
      signal: opts.signal,
      stdin: opts.stdin,
      abortGraceMs: opts.abortGraceMs,
      onStderrLine: (line) => {
        const event = parseBladeEvent(line)
        if (event) opts.onEvent?.(event)
      },
    })
    const parsed = parseJson(result.stdout)
    if (parsed && typeof parsed === 'object' && 'error' in parsed) throw remoteError(what, (parsed as {error: RemoteErrorBody}).error)
    if (result.code === 0 && parsed !== undefined) return parsed as T
    throw notRunnable(what, argv[0], result.code, result.stderr)
  }
}

interface RemoteErrorBody {
  code?: string
  message?: string
  exitCode?: number
  suggestions?: string[]
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

function notRunnable(what: string, command: string, code: number | null, stderr: string): ShienError {
  const tail = stderr.split('\n').filter((l) => l && !l.startsWith('@shien ')).slice(-3).join(' | ')
  const missing = code === 127
  return new ShienError(
    missing ? `The blade has no "${command}" command.` : `${what} failed on the blade (exit ${code}): ${tail || 'no message'}.`,
    {
      code: missing ? 'BLADE_NOT_INSTALLED' : 'REMOTE_FAILED',
      exit: 'remote',
      suggestions: missing ? ['Ask an admin to install shien on the blade.'] : ['Run it again with --json and show the output to an admin.'],
    },
  )
}
