import {ShienError, isShienError} from '../errors.js'

export interface Writers {
  stdout: (text: string) => void
  stderr: (text: string) => void
}

/** Prints a command's result: the object itself under --json, else the human text (if any). */
export function writeResult(io: Writers, json: boolean, result: object, text: string): void {
  if (json) io.stdout(JSON.stringify(result) + '\n')
  else if (text !== '') io.stdout(text + '\n')
}

/**
 * Prints an error the way every shien command does (`Error (CODE): message`, then `Try this:`
 * lines on stderr; one `{"error": ...}` object on stdout under --json) and returns its exit code.
 */
export function writeError(io: Writers, json: boolean, error: unknown, signal: AbortSignal, tool = 'ie-virsh'): number {
  const e = asShienError(error, signal, tool)
  if (json) {
    io.stdout(JSON.stringify({error: e.toJSON()}) + '\n')
  } else {
    const lines = [`Error (${e.code}): ${e.message}`]
    if (e.suggestions.length > 0) lines.push('Try this:', ...e.suggestions.map((s) => `  ${s}`))
    io.stderr(lines.join('\n') + '\n')
  }
  return e.exitCode
}

function asShienError(error: unknown, signal: AbortSignal, tool: string): ShienError {
  if (isShienError(error)) return error
  if (signal.aborted) return new ShienError('Interrupted.', {code: 'CANCELLED', exit: 'cancelled', cause: error})
  const message = error instanceof Error ? error.message : String(error)
  return new ShienError(`${tool} failed unexpectedly: ${message}`, {
    code: 'INTERNAL',
    cause: error,
    suggestions: ['Send this message to an admin.'],
  })
}
