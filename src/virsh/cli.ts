import {parseArgs} from 'node:util'

import {ShienError} from '../errors.js'

/** A parsed ie-virsh command line. */
export type Invocation =
  | {command: 'define' | 'start' | 'destroy'; slot: string; json: boolean}
  | {command: 'undefine'; slot: string; removeImage: boolean; json: boolean}
  | {command: 'list' | 'version' | 'help'; json: boolean}

const WITH_SLOT = ['define', 'start', 'destroy', 'undefine'] as const
const WITHOUT_SLOT = ['list', 'version', 'help'] as const

/** The commands and what they do, for `help` (the thesis's table 2.1, minus what comes later). */
export const COMMANDS = [
  {usage: 'define SLOT', description: 'Create the domain <account>-SLOT from your image images/SLOT.qcow2'},
  {usage: 'start SLOT', description: 'Boot the VM in SLOT'},
  {usage: 'destroy SLOT', description: 'Power the VM in SLOT off at once'},
  {usage: 'undefine SLOT [--remove-image]', description: 'Delete the domain (and with --remove-image its image)'},
  {usage: 'list', description: 'Show your VMs, running or not, and how to reach them over SSH'},
  {usage: 'version', description: 'Show the version and protocol number'},
  {usage: 'help', description: 'Show this help'},
] as const

/** `--json` is looked for by hand too, so that even a command line that fails to parse gets JSON. */
export function wantsJson(argv: string[]): boolean {
  return argv.includes('--json')
}

export function parseInvocation(argv: string[]): Invocation {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {json: {type: 'boolean'}, 'remove-image': {type: 'boolean'}, help: {type: 'boolean', short: 'h'}},
    })
  } catch (error) {
    throw usage((error as Error).message, error)
  }
  const {values, positionals} = parsed
  const json = values.json ?? false
  const [command = 'help', ...rest] = values.help ? ['help'] : positionals
  if (values['remove-image'] && command !== 'undefine') throw usage('--remove-image goes only with undefine.')
  if ((WITHOUT_SLOT as readonly string[]).includes(command)) {
    if (rest.length > 0) throw usage(`${command} takes no arguments.`)
    return {command: command as (typeof WITHOUT_SLOT)[number], json}
  }
  if (!(WITH_SLOT as readonly string[]).includes(command)) throw usage(`Unknown command "${command}".`)
  if (rest.length !== 1) throw usage(`${command} takes exactly one SLOT, e.g. ie-virsh ${command} 01.`)
  const slot = rest[0]
  if (command === 'undefine') return {command, slot, removeImage: values['remove-image'] ?? false, json}
  return {command: command as 'define' | 'start' | 'destroy', slot, json}
}

function usage(message: string, cause?: unknown): ShienError {
  return new ShienError(message, {code: 'USAGE', exit: 'usage', cause, suggestions: ['See the commands: ie-virsh help']})
}

export function helpText(): string {
  const width = Math.max(...COMMANDS.map((c) => c.usage.length))
  return [
    'Usage: sudo ie-virsh <command> [SLOT] [--json]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.usage.padEnd(width)}  ${c.description}`),
    '',
    'SLOT is 01, 02, ... up to your VM limit. Domains are named <account>-SLOT.',
    'Exit codes: 0 ok, 1 failure, 2 usage, 3 image refused, 5 libvirt failed, 6 refused by a rule.',
  ].join('\n')
}
