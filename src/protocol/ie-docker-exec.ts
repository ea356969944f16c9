import {refusedFlag, runUsage, type FlagKind} from './ie-docker-run.js'

/** `ie-docker exec`'s command line, parsed: docker's grammar, flags, then NAME, then the command. */
export interface ExecRequest {
  name: string
  command: string[]
  interactive: boolean
  tty: boolean
  env: string[]
  workdir?: string
}

/** `ie-docker logs`'s command line, parsed. */
export interface LogsRequest {
  name: string
  follow: boolean
  /** Only the last N lines. */
  tail?: number
  timestamps: boolean
}

/** The allow-list of exec's flags; everything else is refused, naming it. */
export const EXEC_FLAGS = ['-i, -t', '-e, --env KEY=VALUE', '-w, --workdir PATH']

/** The allow-list of logs' flags. */
export const LOGS_FLAGS = ['-f, --follow', '-n, --tail N', '-t, --timestamps']

const EXEC_VALUE_FLAGS = ['-e', '--env', '-w', '--workdir']

/** What `exec` makes of a flag (see runFlagKind). */
export function execFlagKind(flag: string): FlagKind {
  if (/^-[it]+$/.test(flag) || flag === '--interactive' || flag === '--tty') return 'switch'
  if (EXEC_VALUE_FLAGS.includes(flag)) return 'value'
  if (flag in EXEC_REFUSED) return 'refused'
  return undefined
}

const EXEC_REFUSED: Record<string, string> = {
  '--privileged': 'it would give the process every capability the container was denied',
  '-u': 'a process in a container runs as the container does: you',
  '--user': 'a process in a container runs as the container does: you',
  '--env-file': 'the file would be read on the blade with root privileges',
  '--preserve-fds': "ie-docker's descriptors are not the container's",
  '--preserve-fd': "ie-docker's descriptors are not the container's",
}

/** Parses `exec [-i] [-t] [-e K=V] [-w PATH] NAME COMMAND...` the way docker does. */
export function parseExecArgs(argv: readonly string[]): ExecRequest {
  const req: Omit<ExecRequest, 'name'> = {command: [], interactive: false, tty: false, env: []}
  let i = 0
  while (i < argv.length && argv[i].startsWith('-') && argv[i] !== '-') {
    const [flag, inline] = splitFlag(argv[i++])
    if (/^-[it]+$/.test(flag)) {
      if (inline !== undefined) throw runUsage(`${flag} takes no value.`)
      if (flag.includes('i')) req.interactive = true
      if (flag.includes('t')) req.tty = true
    } else if (flag === '--interactive' || flag === '--tty') {
      if (inline !== undefined) throw runUsage(`${flag} takes no value.`)
      req[flag === '--tty' ? 'tty' : 'interactive'] = true
    } else if (EXEC_VALUE_FLAGS.includes(flag)) {
      const value = inline ?? argv[i++]
      if (value === undefined) throw runUsage(`${flag} needs a value.`)
      if (flag === '-e' || flag === '--env') req.env.push(value)
      else if (req.workdir === undefined) req.workdir = value
      else throw runUsage(`${flag} given twice.`)
    } else {
      throw refusedFlag(flag, EXEC_REFUSED[flag] ?? 'ie-docker exec accepts only the flags listed in "ie-docker help"')
    }
  }
  const [name, ...command] = argv.slice(i)
  if (name === undefined) throw runUsage('exec needs a container NAME and a COMMAND, e.g. exec web ls /srv.')
  if (command.length === 0) throw runUsage(`exec ${name} needs a COMMAND to run, e.g. exec ${name} /bin/sh.`)
  return {...req, name, command}
}

/** Parses `logs [-f] [-n N] [-t] NAME`. */
export function parseLogsArgs(argv: readonly string[]): LogsRequest {
  const req: Omit<LogsRequest, 'name'> = {follow: false, timestamps: false}
  const names: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = splitFlag(argv[i])
    if (!flag.startsWith('-') || flag === '-') names.push(argv[i])
    else if (flag === '-f' || flag === '--follow') req.follow = true
    else if (flag === '-t' || flag === '--timestamps') req.timestamps = true
    else if (flag === '-n' || flag === '--tail') {
      const value = inline ?? argv[++i]
      if (value === undefined || !/^[0-9]{1,9}$/.test(value)) throw runUsage(`${flag} needs a number of lines, e.g. ${flag} 50.`)
      req.tail = Number(value)
    } else if (flag === '--json') {
      // ie-docker's own option, read by wantsJson.
    } else throw refusedFlag(flag, 'ie-docker logs accepts only the flags listed in "ie-docker help"')
  }
  if (names.length !== 1) throw runUsage('logs takes exactly one container NAME.')
  return {...req, name: names[0]}
}

function splitFlag(arg: string): [string, string | undefined] {
  const eq = arg.indexOf('=')
  return arg.startsWith('--') && eq > 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined]
}
