import {parseArgs, type ParseArgsConfig} from 'node:util'

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

/** The options parseToolArgs reads, as node:util's parseArgs describes them. */
export type ToolOptions = NonNullable<ParseArgsConfig['options']>

/**
 * node:util's parseArgs, strict and with positionals, as both tools parse their options: an
 * unknown option or a missing value is the tool's USAGE error.
 */
export function parseToolArgs<O extends ToolOptions>(tool: PrivilegedTool, args: string[], options: O) {
  try {
    return parseArgs({args, options, allowPositionals: true as const, strict: true as const})
  } catch (error) {
    throw usageError(tool, (error as Error).message, error)
  }
}

/**
 * A tool's help: the usage line, the commands (usages in one column, descriptions in the next),
 * then each further section, with a blank line between.
 */
export function toolHelp(usage: string, commands: readonly CommandHelp[], ...sections: string[][]): string {
  const width = Math.max(...commands.map((c) => c.usage.length))
  const table = commands.map((c) => `  ${c.usage.padEnd(width)}  ${c.description}`)
  return [[usage], ['Commands:', ...table], ...sections].map((section) => section.join('\n')).join('\n\n')
}
