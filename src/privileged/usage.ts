import {ShienError} from '../errors.js'
import type {PrivilegedTool} from './caller.js'

/** A line of a tool's help: how to call a command, and what it does. */
export interface CommandHelp {
  usage: string
  description: string
}

/** A command line the tool cannot parse (exit 2), pointing at its help. */
export function usageError(tool: PrivilegedTool, message: string, cause?: unknown): ShienError {
  return new ShienError(message, {code: 'USAGE', exit: 'usage', cause, suggestions: [`See the commands: ${tool} help`]})
}

/** The commands as help lists them: usages in one column, descriptions in the next. */
export function commandTable(commands: readonly CommandHelp[]): string[] {
  const width = Math.max(...commands.map((c) => c.usage.length))
  return commands.map((c) => `  ${c.usage.padEnd(width)}  ${c.description}`)
}
