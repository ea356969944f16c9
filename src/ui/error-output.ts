import {Command, Errors} from '@oclif/core'
import {closest, distance} from 'fastest-levenshtein'

import {isShienError, ShienError} from '../errors.js'

/** Whether `--json` is among a command line's words (before a `--`, after which words are not flags). */
export function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--')
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json')
}

/**
 * Prints a shien error the one way every command does: under --json only the envelope
 * `{"error": {code, message, exitCode, suggestions}}` on stdout, otherwise
 * `Error (CODE): message` and `Try this:` with the suggestions on stderr.
 */
export function printError(error: ShienError, json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify({error: error.toJSON()}, null, 2) + '\n')
    return
  }
  const lines = [`Error (${error.code}): ${error.message}`]
  if (error.suggestions.length > 0) lines.push('Try this:', ...error.suggestions.map((s) => `  ${s}`))
  process.stderr.write(lines.join('\n') + '\n')
}

/** oclif's own error for a bad command line: an unknown flag or argument, a value it cannot parse, a missing one. */
export function isUsageError(error: unknown): error is Errors.CLIError {
  return error instanceof Errors.CLIError && !(error instanceof Errors.ExitError) && error.oclif?.exit === 2
}

/**
 * oclif's error for a bad command line as a USAGE error (exit 2): its message without the pointer
 * to --help, which becomes a suggestion naming the command, after the nearest real flag for each
 * unknown one ("Did you mean --channels?").
 */
export function usageError(error: Errors.CLIError, command: Command): ShienError {
  const {config, id} = command
  const message = error.message.replace(/\n?See more help with --help$/, '')
  const name = `${config.bin} ${(id ?? '').replaceAll(':', config.topicSeparator)}`.trim()
  const suggestions = [...flagSuggestions(error, command), `${name} --help shows its arguments and flags.`]
  return new ShienError(message, {code: 'USAGE', exit: 'usage', cause: error, suggestions})
}

function flagSuggestions(error: Errors.CLIError, command: Command): string[] {
  const unknown = (error as {flags?: unknown}).flags
  if (!Array.isArray(unknown)) return []
  const ctor = command.constructor as Command.Class
  const known = Object.entries(ctor.flags ?? {}).flatMap(([name, flag]) => (flag.hidden ? [] : [`--${name}`]))
  if (ctor.enableJsonFlag) known.push('--json')
  if (known.length === 0) return []
  const lines = unknown
    .filter((flag): flag is string => typeof flag === 'string' && flag.startsWith('--'))
    .map((flag) => nearest(flag.replace(/=.*$/, ''), known))
    .filter((near): near is string => near !== undefined)
    .map((near) => `Did you mean ${near}?`)
  return [...new Set(lines)]
}

/** The candidate nearest to `word`, when it is near enough to be a typo of it. */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  if (candidates.length === 0) return undefined
  const near = closest(word, [...candidates])
  return distance(word, near) <= Math.max(2, Math.floor(word.length / 3)) ? near : undefined
}

/**
 * Reports a command's error as shien's one error contract, then throws oclif's ExitError with the
 * error's exit code (oclif prints nothing more for it). Errors that are neither shien's nor a bad
 * command line go back to oclif's own handling, except under --json, where they become
 * UNEXPECTED (exit 1) rather than oclif's whole error object.
 */
export function reportCommandError(command: Command, error: unknown, json: boolean): never {
  let shown: ShienError | undefined
  if (isShienError(error)) shown = error
  else if (isUsageError(error)) shown = usageError(error, command)
  else if (error instanceof Errors.ExitError) throw error
  else if (json) shown = unexpected(error)
  if (shown === undefined) throw error
  printError(shown, json)
  throw new Errors.ExitError(shown.exitCode)
}

function unexpected(error: unknown): ShienError {
  const message = error instanceof Error ? error.message : String(error)
  return new ShienError(message, {code: 'UNEXPECTED', cause: error, suggestions: ['Run it again with DEBUG=* for details, and report it if it persists.']})
}
