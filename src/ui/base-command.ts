import {Command, Errors} from '@oclif/core'

import {isShienError, ShienError} from '../errors.js'

/**
 * The base of every shien command: `--json`, one AbortController that SIGINT aborts,
 * and errors printed as `Error (CODE): message` followed by what to try.
 */
export abstract class ShienCommand extends Command {
  static override enableJsonFlag = true

  protected readonly abort = new AbortController()
  private readonly onSigint = () => this.abort.abort(new Error('interrupted'))

  public override async init(): Promise<void> {
    await super.init()
    process.once('SIGINT', this.onSigint)
  }

  protected override async finally(error: Error | undefined): Promise<unknown> {
    process.off('SIGINT', this.onSigint)
    return super.finally(error)
  }

  protected override toErrorJson(error: unknown): unknown {
    if (isShienError(error)) return {error: error.toJSON()}
    return super.toErrorJson(error)
  }

  protected override async catch(error: Error & {exitCode?: number}): Promise<unknown> {
    if (this.abort.signal.aborted && !isShienError(error)) {
      error = new ShienError('Interrupted.', {
        code: 'CANCELLED',
        exit: 'cancelled',
        cause: error,
        suggestions: ['Run the same command again: a push resumes where it stopped.'],
      })
    }
    if (this.jsonEnabled() && isUsageError(error)) error = this.usageError(error)
    if (!isShienError(error)) return super.catch(error)
    if (this.jsonEnabled()) {
      this.logJson(this.toErrorJson(error))
    } else {
      const lines = [`Error (${error.code}): ${error.message}`]
      if (error.suggestions.length > 0) lines.push('Try this:', ...error.suggestions.map((s) => `  ${s}`))
      process.stderr.write(lines.join('\n') + '\n')
    }
    // Errors.exit keeps oclif from printing the error a second time.
    throw new Errors.ExitError(error.exitCode)
  }

  /**
   * oclif's own error for a bad command line (unknown flag, missing argument, a flag value it
   * cannot parse, a command's `this.error(..., {exit: 2})`) as a USAGE error, so that under
   * --json it prints the one envelope and exits 2 rather than oclif's whole error object (the
   * loaded config included) with exit 1. Without --json, oclif's message and the command's usage
   * stay as they are.
   */
  private usageError(error: Errors.CLIError): ShienError {
    const message = error.message.replace(/\n?See more help with --help$/, '')
    const command = `${this.config.bin} ${(this.id ?? '').replaceAll(':', this.config.topicSeparator)}`
    return new ShienError(message, {code: 'USAGE', exit: 'usage', cause: error, suggestions: [`${command} --help shows its arguments and flags.`]})
  }
}

function isUsageError(error: unknown): error is Errors.CLIError {
  return error instanceof Errors.CLIError && !(error instanceof Errors.ExitError) && error.oclif?.exit === 2
}
