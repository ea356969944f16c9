import type {ShienError} from '../errors.js'
import {parseToolArgs, toolHelp, usageError} from '../privileged/usage.js'

/** Commands that act on one of the caller's slots. */
export type SlotCommand = 'define' | 'start' | 'shutdown' | 'destroy' | 'undefine' | 'dumpxml' | 'console' | 'debug'

interface Common {
  json: boolean
  /** An admin acting on this account's domains. */
  account?: string
}

/** A parsed ie-virsh command line. */
export type Invocation =
  | (Common & {command: 'define'; slot: string; template?: string})
  | (Common & {command: 'start' | 'destroy' | 'dumpxml' | 'console'; slot: string})
  | (Common & {command: 'undefine'; slot: string; removeImage: boolean})
  | (Common & {command: 'debug'; slot: string; stop: boolean})
  | (Common & {command: 'shutdown'; slot: string; timeoutSeconds: number})
  | (Common & {command: 'list' | 'templates'})
  | {command: 'version'; json: boolean}
  | {command: 'help'; json: boolean}
  | {command: 'facts'; json: boolean}

const WITH_SLOT: readonly string[] = ['define', 'start', 'shutdown', 'destroy', 'undefine', 'dumpxml', 'console', 'debug']
const WITHOUT_SLOT: readonly string[] = ['list', 'templates', 'facts', 'version', 'help']

/** The commands and what they do, for `help` (the thesis's table 2.1, plus console and templates). */
export const COMMANDS = [
  {usage: 'define SLOT [--template NAME]', description: 'Create the domain <account>-SLOT from your image images/SLOT.qcow2'},
  {usage: 'start SLOT', description: 'Boot the VM in SLOT'},
  {usage: 'shutdown SLOT [--timeout SECONDS]', description: 'Shut the VM in SLOT down (ACPI); power it off if it is still running after the timeout (60 s)'},
  {usage: 'destroy SLOT', description: 'Power the VM in SLOT off at once'},
  {usage: 'undefine SLOT [--remove-image]', description: 'Delete the domain (and with --remove-image its image)'},
  {usage: 'list', description: 'Show your VMs, running or not, and how to reach them over SSH'},
  {usage: 'dumpxml SLOT', description: "Show the domain's libvirt XML"},
  {usage: 'console SLOT', description: "Attach to the running VM's serial console (leave with Ctrl-])"},
  {usage: 'debug SLOT [--stop]', description: 'Boot the VM with a gdb stub on a port from the pool (--stop: halted at the first instruction)'},
  {usage: 'templates', description: 'Show the domain templates you may use with define --template'},
  {usage: 'admit --step STEP --slot SLOT', description: "Wait for a place in the blade's push queue and hold it until stdin closes (run by shien's push steps)"},
  {usage: 'facts', description: "Show this blade's memory, load and architectures, as placement uses them (no VM names)"},
  {usage: 'version', description: 'Show the version and protocol number'},
  {usage: 'help', description: 'Show this help'},
] as const

/** Flags and the one command each belongs to (--account and --json go with any). */
const FLAG_COMMAND = {'remove-image': 'undefine', template: 'define', stop: 'debug', timeout: 'shutdown'} as const

/** shutdown's wait: ie-virsh holds the account's lock meanwhile, so it is bounded. */
export const SHUTDOWN_TIMEOUT = {default: 60, max: 600} as const

/** `--json` is looked for by hand too, so that even a command line that fails to parse gets JSON. */
export function wantsJson(argv: string[]): boolean {
  return argv.includes('--json')
}

/**
 * `admit` (the push queue's helper, src/admission/) has a command line and an output of its own:
 * exactly `admit --step STEP --slot SLOT`, JSON lines while its stdin stays open.
 */
export function isAdmit(argv: string[]): boolean {
  return argv[0] === 'admit'
}

export function parseInvocation(argv: string[]): Invocation {
  const {values, positionals} = parse(argv)
  const json = values.json ?? false
  const [command = 'help', ...rest] = values.help ? ['help'] : positionals
  for (const [flag, owner] of Object.entries(FLAG_COMMAND)) {
    if (values[flag as keyof typeof FLAG_COMMAND] !== undefined && command !== owner) throw usage(`--${flag} goes only with ${owner}.`)
  }
  const account = values.account === undefined ? {} : {account: values.account}
  if (WITHOUT_SLOT.includes(command)) {
    if (rest.length > 0) throw usage(`${command} takes no arguments.`)
    if (command === 'version' || command === 'help' || command === 'facts') {
      if (values.account !== undefined) throw usage(`--account does not go with ${command}.`)
      return {command, json}
    }
    return {command: command as 'list' | 'templates', json, ...account}
  }
  if (command === 'admit') throw usage('admit takes exactly: ie-virsh admit --step STEP --slot SLOT (nothing before it).')
  if (!WITH_SLOT.includes(command)) throw usage(`Unknown command "${command}".`)
  if (rest.length !== 1) throw usage(`${command} takes exactly one SLOT, e.g. ie-virsh ${command} 01.`)
  const slot = rest[0]
  if (command === 'undefine') return {command, slot, removeImage: values['remove-image'] ?? false, json, ...account}
  if (command === 'debug') return {command, slot, stop: values.stop ?? false, json, ...account}
  if (command === 'shutdown') return {command, slot, timeoutSeconds: timeoutOf(values.timeout), json, ...account}
  if (command === 'define') return {command, slot, json, ...account, ...(values.template === undefined ? {} : {template: values.template})}
  return {command: command as 'start' | 'destroy' | 'dumpxml' | 'console', slot, json, ...account}
}

function parse(argv: string[]) {
  return parseToolArgs('ie-virsh', argv, {
    json: {type: 'boolean'},
    'remove-image': {type: 'boolean'},
    stop: {type: 'boolean'},
    template: {type: 'string'},
    timeout: {type: 'string'},
    account: {type: 'string'},
    help: {type: 'boolean', short: 'h'},
  })
}

/** `--timeout SECONDS`: whole seconds, 1 to SHUTDOWN_TIMEOUT.max. */
function timeoutOf(raw: string | undefined): number {
  if (raw === undefined) return SHUTDOWN_TIMEOUT.default
  const seconds = /^\d{1,4}$/.test(raw) ? Number(raw) : Number.NaN
  if (!(seconds >= 1 && seconds <= SHUTDOWN_TIMEOUT.max)) throw usage(`--timeout takes whole seconds from 1 to ${SHUTDOWN_TIMEOUT.max}, not "${raw}".`)
  return seconds
}

function usage(message: string, cause?: unknown): ShienError {
  return usageError('ie-virsh', message, cause)
}

export function helpText(): string {
  return toolHelp('Usage: sudo ie-virsh <command> [SLOT] [--json] [--account ACCOUNT]', COMMANDS, [
    'SLOT is 01, 02, ... up to your VM limit. Domains are named <account>-SLOT.',
    'Admins act on another account\'s domains with --account ACCOUNT.',
    'admit prints JSON lines (waiting, admitted), then its result; shien push runs it, not people.',
    'Exit codes: 0 ok, 1 failure, 2 usage, 3 image refused, 5 libvirt failed, 6 refused by a rule, 130 interrupted.',
  ])
}
