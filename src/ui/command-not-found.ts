import {Errors, type Hook, toConfiguredId} from '@oclif/core'
import notFound from '@oclif/plugin-not-found'

import {ExitCode, ShienError} from '../errors.js'
import {nearest, printError, wantsJson} from './error-output.js'

/**
 * `shien <words that are no command>`. On a terminal, and without --json, @oclif/plugin-not-found
 * asks "Did you mean ...?" and runs the nearest command when the user says yes; everywhere else,
 * and when the user says no, it is a USAGE error (exit 2) with the nearest command as a
 * suggestion, printed as every shien error is (the envelope under --json).
 */
const hook: Hook.CommandNotFound = async function (opts) {
  const json = wantsJson(opts.argv ?? [])
  if (!json && process.stdin.isTTY && process.stdout.isTTY) {
    try {
      return await notFound.call(this, opts)
    } catch (error) {
      // The plugin's own refusal (exit 127) is replaced by shien's below; anything else is real.
      if (!(error instanceof Errors.CLIError) || error.oclif?.exit !== 127) throw error
    }
  }
  printError(notACommand(opts.id, opts.config), json)
  throw new Errors.ExitError(ExitCode.usage)
}

export default hook

function notACommand(id: string, config: Parameters<Hook.CommandNotFound>[0]['config']): ShienError {
  // `shien --bogus`: oclif takes the first word for the command, whatever it is.
  if (id.startsWith('-')) {
    return new ShienError(`Nonexistent flag: ${id}`, {code: 'USAGE', exit: 'usage', suggestions: [`${config.bin} --help lists the commands and the flags shien takes alone.`]})
  }
  const topic = config.findTopic(id.split(':')[0]) ? ` ${id.split(':')[0]}` : ''
  const suggestions = [`${config.bin} help${topic} lists the commands.`]
  const near = nearest(id, config.commands.filter((command) => !command.hidden).map((command) => command.id))
  if (near !== undefined) suggestions.unshift(`Did you mean "${config.bin} ${toConfiguredId(near, config)}"?`)
  return new ShienError(`"${toConfiguredId(id, config)}" is not a ${config.bin} command.`, {code: 'USAGE', exit: 'usage', suggestions})
}
