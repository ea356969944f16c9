import {ShienError} from '../errors.js'
import {refusedFlag} from '../protocol/ie-docker-run.js'

/** `ie-docker build`'s command line, parsed; nothing in it has been checked against the rules yet. */
export interface BuildRequest {
  /** `-t NAME[:TAG]` as the caller wrote it (the account prefix comes later). */
  tag: string
  /** `-f FILE`: the Containerfile, inside the context folder. */
  file?: string
  /** The context folder, as given (relative to the caller's working directory). */
  context: string
  buildArgs: string[]
  noCache: boolean
  target?: string
}

/** Flags refused whatever their value, with the reason the student is shown. */
const REFUSED: Record<string, string> = {
  '--volume': 'a build sees its context folder and nothing else of the blade',
  '-v': 'a build sees its context folder and nothing else of the blade',
  '--network': 'build steps use the default network',
  '--cap-add': 'extra capabilities let a build step reach past its walls',
  '--security-opt': 'the security profiles stay as the admin set them',
  '--device': "the blade's devices are not for builds",
  '--secret': 'builds get no secrets from the blade',
  '--ssh': "builds get no access to the blade's SSH agent",
  '--pull': 'builds start from the images offered on the blade or your own; nothing is pulled',
  '--isolation': 'the isolation stays as the admin set it',
  '--userns': 'build steps keep their user namespace',
}

export function buildUsage(message: string): ShienError {
  return new ShienError(message, {code: 'USAGE', exit: 'usage', suggestions: ['Example: ie-docker build -t myimg ~/repo']})
}

/** Parses `build`'s arguments: the allow-listed flags, then exactly one context folder. */
export function parseBuildArgs(argv: readonly string[]): BuildRequest {
  const req: Partial<BuildRequest> & {buildArgs: string[]; noCache: boolean} = {buildArgs: [], noCache: false}
  const positionals: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg)
      continue
    }
    const eq = arg.indexOf('=')
    const [flag, inline] = arg.startsWith('--') && eq > 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined]
    if (flag === '--no-cache') {
      if (inline !== undefined) throw buildUsage('--no-cache takes no value.')
      req.noCache = true
      continue
    }
    const key = {'-t': 'tag', '--tag': 'tag', '-f': 'file', '--file': 'file', '--build-arg': 'buildArg', '--target': 'target'}[flag]
    if (key === undefined) throw refusedFlag(flag, REFUSED[flag] ?? 'ie-docker build accepts only -t, -f, --build-arg, --target and --no-cache')
    const value = inline ?? argv[++i]
    if (value === undefined) throw buildUsage(`${flag} needs a value.`)
    if (key === 'buildArg') {
      if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(value)) throw buildUsage(`--build-arg ${value}: write it as NAME=VALUE.`)
      req.buildArgs.push(value)
    } else {
      const k = key as 'tag' | 'file' | 'target'
      if (req[k] !== undefined) throw buildUsage(`${flag} given twice.`)
      req[k] = value
    }
  }
  if (req.tag === undefined) throw buildUsage('build needs -t NAME: the image becomes yours as NAME.')
  if (positionals.length !== 1) throw buildUsage('build takes one context folder (for example ".").')
  if (positionals[0] === '-') throw buildUsage('build reads its context from a folder, not from standard input.')
  if (req.target !== undefined && !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(req.target)) throw buildUsage(`--target ${req.target} is not a stage name.`)
  return {...req, tag: req.tag, context: positionals[0]}
}
