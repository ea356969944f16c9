import {Command} from '@oclif/core'

import {isShienError, ShienError} from '../errors.js'
import {reportCommandError, wantsJson} from './error-output.js'

/**
 * The base of every shien command: `--json`, one AbortController that SIGINT aborts,
 * and errors printed as `Error (CODE): message` followed by what to try, or as the one JSON
 * envelope under --json (src/ui/error-output.ts).
 */
export abstract class ShienCommand extends Command {
  static override enableJsonFlag = true

  protected readonly abort = new AbortController()
  /** The command line as typed: parse() replaces this.argv with what it was given. */
  private typed: string[] = []
  /**
   * Ctrl-C stops the work cleanly (the abort); a second one ends the process at once. The
   * listener stays for the whole command: with none left, the signal-exit handler that execa
   * installs for its children would re-raise SIGINT and kill the process before the cleanups.
   */
  private readonly onSigint = () => {
    if (this.abort.signal.aborted) process.exit(130)
    this.abort.abort(new Error('interrupted'))
  }

  public override async init(): Promise<void> {
    await super.init()
    this.typed = [...this.argv]
    process.on('SIGINT', this.onSigint)
  }

  protected override async finally(error: Error | undefined): Promise<unknown> {
    process.off('SIGINT', this.onSigint)
    return super.finally(error)
  }

  protected override async catch(error: Error & {exitCode?: number}): Promise<unknown> {
    if (this.abort.signal.aborted && !isShienError(error)) {
      error = new ShienError('Interrupted.', {
        code: 'CANCELLED',
        exit: 'cancelled',
        cause: error,
        suggestions: ['Run the same command again.'],
      })
    }
    // jsonEnabled() is false when parsing failed before --json was read, so look at the words too.
    return reportCommandError(this, error, this.jsonEnabled() || wantsJson(this.typed.length > 0 ? this.typed : this.argv))
  }
}
