/**
 * Exit codes shien's commands use. Scripts can rely on them; the README lists them.
 */
export const ExitCode = {
  ok: 0,
  /** Something unexpected: a bug, or an error nothing else describes. */
  failure: 1,
  /** The command line was wrong (unknown flag, bad slot, missing argument). */
  usage: 2,
  /** The input (box, OVF, VMDK, image) was refused as unsafe or malformed. */
  badInput: 3,
  /** The blade could not be reached, or its host key could not be trusted. */
  connection: 4,
  /** The blade refused or failed a step (permission, full disk, conversion). */
  remote: 5,
  /**
   * A limit or a rule stopped it (slot in use, quota, not allowed), or the slot is being pushed
   * by another push right now (SLOT_BUSY).
   */
  refused: 6,
  /** Interrupted (Ctrl-C); what was already on the blade is kept for a resume. */
  cancelled: 130,
} as const

export type ExitCodeName = keyof typeof ExitCode

/** The name of an exit code, for an error another shien process reported (`failure` if unknown). */
export function exitCodeName(code: number | undefined): ExitCodeName {
  const found = Object.entries(ExitCode).find(([, value]) => value === code)
  return (found?.[0] ?? 'failure') as ExitCodeName
}

/**
 * An error a user can act on: a stable code, an exit code, and what to do next.
 * Library errors are wrapped at the adapter boundary and kept as `cause`.
 */
export class ShienError extends Error {
  readonly code: string
  readonly exitCode: number
  readonly suggestions: string[]

  constructor(
    message: string,
    opts: {code: string; exit?: ExitCodeName; suggestions?: string[]; cause?: unknown},
  ) {
    super(message, {cause: opts.cause})
    this.name = 'ShienError'
    this.code = opts.code
    this.exitCode = ExitCode[opts.exit ?? 'failure']
    this.suggestions = opts.suggestions ?? []
  }

  toJSON(): {code: string; message: string; exitCode: number; suggestions: string[]} {
    return {code: this.code, message: this.message, exitCode: this.exitCode, suggestions: this.suggestions}
  }
}

/** Thrown for input refused as unsafe or malformed (exit 3). */
export function badInput(code: string, message: string, suggestions: string[] = []): ShienError {
  return new ShienError(message, {code, exit: 'badInput', suggestions})
}

/**
 * The config files' errors (docs/config.md): CONFIG_INVALID (a wrong type, an unknown key, not
 * JSON; the message names the file and the field), CONFIG_UNREADABLE, CONFIG_MISSING (the blade
 * config, for ie-virsh and ie-docker). All are input refused as malformed (exit 3), whichever file.
 */
export type ConfigErrorCode = 'CONFIG_INVALID' | 'CONFIG_MISSING' | 'CONFIG_UNREADABLE'

export function configError(code: ConfigErrorCode, message: string, suggestions: string[], cause?: unknown): ShienError {
  return new ShienError(message, {code, exit: 'badInput', suggestions, cause})
}

export function isShienError(error: unknown): error is ShienError {
  return error instanceof ShienError
}
