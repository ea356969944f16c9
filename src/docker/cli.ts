import {ShienError} from '../errors.js'
import {parseBuildArgs, type BuildRequest} from './build-args.js'
import {EXEC_FLAGS, LOGS_FLAGS, parseExecArgs, parseLogsArgs, type ExecRequest, type LogsRequest} from '../protocol/ie-docker-exec.js'
import {parseRunArgs, type RunRequest} from '../protocol/ie-docker-run.js'
import {parseToolArgs, toolHelp, usageError, type ToolOptions} from '../privileged/usage.js'

interface Common {
  json: boolean
  /** An admin acting on this account's containers. */
  account?: string
}

/** A parsed ie-docker command line. */
export type DockerInvocation =
  | (Common & {command: 'run'; request: RunRequest})
  | (Common & {command: 'build'; request: BuildRequest})
  | (Common & {command: 'exec'; request: ExecRequest})
  | (Common & {command: 'logs'; request: LogsRequest})
  | (Common & {command: 'start' | 'stop' | 'attach'; name: string})
  | (Common & {command: 'rm'; name: string; force: boolean})
  | (Common & {command: 'rmi'; image: string})
  | (Common & {command: 'ps' | 'images'})
  | {command: 'version'; json: boolean}
  | {command: 'help'; json: boolean}

/** The commands (the thesis' table 4.1) and what they do, for `help`. */
export const DOCKER_COMMANDS = [
  {usage: 'run [FLAGS] IMAGE [COMMAND...]', description: 'Create and start a container <account>-NAME (flags below)'},
  {usage: 'ps', description: 'Show your containers, running or not, with their host ports'},
  {usage: 'start NAME', description: 'Start a stopped container'},
  {usage: 'stop NAME', description: 'Stop a running container'},
  {usage: 'rm [-f] NAME', description: 'Remove a container (-f: a running one too); its ports return to the pool'},
  {usage: 'attach NAME', description: "Connect this terminal to a running container's main process"},
  {usage: 'exec [-i] [-t] NAME COMMAND...', description: 'Run a command in a running container, as the container runs: as you (flags below)'},
  {usage: 'logs [-f] [-n N] NAME', description: "Show a container's output (-f: keep following it)"},
  {usage: 'build -t NAME[:TAG] [-f FILE] FOLDER', description: 'Build your image NAME from a folder in your storage folder (flags below)'},
  {usage: 'images', description: 'Show the images you may run: the shared ones and your own'},
  {usage: 'rmi IMAGE', description: 'Remove one of your images'},
  {usage: 'version', description: 'Show the version and protocol number'},
  {usage: 'help', description: 'Show this help'},
] as const

/** The flags `run` accepts; every other flag is refused. */
export const RUN_FLAGS = [
  '-i, -t, -d, --rm', '--name NAME', '-e, --env KEY=VALUE', '-v, --volume FOLDER:PATH[:ro]  (a folder in your storage folder)',
  '-p, --publish, --expose PORT  (the container port; the host port comes from the pool)', '-m, --memory SIZE  (at most your limit)',
  '--cpus N  (at most your limit)', '-u, --user UID[:GID]  (your own only: containers run as you)', '-w, --workdir PATH', '-h, --hostname NAME', '--entrypoint CMD',
]

/** The flags `build` accepts; every other flag is refused. */
export const BUILD_FLAGS = [
  '-t, --tag NAME[:TAG]  (the image is yours: <account>-NAME)', '-f, --file FILE  (inside FOLDER; default Containerfile, then Dockerfile)',
  '--build-arg KEY=VALUE', '--target STAGE', '--no-cache',
]

const NAMED = ['start', 'stop', 'attach', 'rm']

/** Commands whose arguments after the command name are the engine's to interpret, not ie-docker's. */
const PASS_THROUGH = ['run', 'build', 'exec']

/** `--json` anywhere before the command, or anywhere at all for commands other than run, build and exec. */
export function wantsJson(argv: string[]): boolean {
  const at = argv.findIndex((a) => PASS_THROUGH.includes(a))
  return (at === -1 ? argv : argv.slice(0, at)).includes('--json')
}

export function parseDockerInvocation(argv: string[]): DockerInvocation {
  // Global options come before the command: after it, run's arguments belong to the container.
  const common: Common = {json: false}
  let i = 0
  for (; i < argv.length && argv[i].startsWith('-'); i++) {
    if (argv[i] === '--json') common.json = true
    else if (argv[i] === '--account' && argv[i + 1] !== undefined) common.account = argv[++i]
    else if (argv[i] === '--help' || argv[i] === '-h') return {command: 'help', json: common.json}
    else throw usage(`Unknown option ${argv[i]} before the command.`)
  }
  const [command = 'help', ...rest] = argv.slice(i)
  if (command === 'run') return {...common, command, request: parseRunArgs(rest)}
  if (command === 'build') return {...common, command, request: parseBuildArgs(rest)}
  if (command === 'exec') return {...common, command, request: parseExecArgs(rest)}
  if (command === 'logs') return {...common, json: common.json || rest.includes('--json'), command, request: parseLogsArgs(rest)}
  const {values, positionals} = parseRest(rest, command === 'rm')
  const json = common.json || (values.json ?? false)
  const account = values.account ?? common.account
  const c = {json, ...(account === undefined ? {} : {account})}
  if (command === 'help' || command === 'version') return {command, json}
  if (command === 'ps' || command === 'images') return none(positionals, command, c)
  if (NAMED.includes(command) || command === 'rmi') {
    if (positionals.length !== 1) throw usage(`${command} takes exactly one ${command === 'rmi' ? 'IMAGE' : 'NAME'}.`)
    if (command === 'rmi') return {...c, command, image: positionals[0]}
    if (command === 'rm') return {...c, command, name: positionals[0], force: values.force ?? false}
    return {...c, command: command as 'start' | 'stop' | 'attach', name: positionals[0]}
  }
  throw usage(`Unknown command "${command}".`)
}

function none(positionals: string[], command: 'ps' | 'images', c: Common): DockerInvocation {
  if (positionals.length > 0) throw usage(`${command} takes no arguments.`)
  return {...c, command}
}

function parseRest(args: string[], rm: boolean) {
  const options: ToolOptions = {json: {type: 'boolean'}, account: {type: 'string'}, ...(rm ? {force: {type: 'boolean', short: 'f'}} : {})}
  const {values, positionals} = parseToolArgs('ie-docker', args, options)
  return {values: values as {json?: boolean; account?: string; force?: boolean}, positionals}
}

function usage(message: string, cause?: unknown): ShienError {
  return usageError('ie-docker', message, cause)
}

export function dockerHelpText(): string {
  return toolHelp(
    'Usage: sudo ie-docker [--json] [--account ACCOUNT] <command> [ARGS]',
    DOCKER_COMMANDS,
    ['run accepts only these flags:', ...RUN_FLAGS.map((f) => `  ${f}`)],
    ['build accepts only these flags (FROM and COPY --from name images offered here or yours):', ...BUILD_FLAGS.map((f) => `  ${f}`)],
    ['exec accepts only these flags (the command runs as the container does: as you):', ...EXEC_FLAGS.map((f) => `  ${f}`)],
    ['logs accepts only these flags:', ...LOGS_FLAGS.map((f) => `  ${f}`)],
    [
      'Names are yours alone: NAME (lower-case letters and digits) is the container <account>-NAME, reachable at http://<account>-NAME.<domain>/.',
      'Exit codes: 0 ok, 1 failure, 2 usage, 5 engine failed, 6 refused by a rule.',
    ],
  )
}
