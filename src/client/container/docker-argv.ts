import {ShienError} from '../../errors.js'
import {execFlagKind} from '../../protocol/ie-docker-exec.js'
import {runFlagKind, type FlagKind} from '../../protocol/ie-docker-run.js'

/** A `shien container run|exec` command line taken apart: shien's own flags, and docker's words. */
export interface DockerArgv {
  /** shien's flags (--host, --jump, --accept-new-host-key, --account, and --json where the command has it), for oclif. */
  shien: string[]
  /** Everything else, in order, for ie-docker: docker's flags, then IMAGE or NAME, then the command. */
  docker: string[]
  /** Flags before IMAGE or NAME that neither shien nor ie-docker knows. */
  unknown: string[]
}

const SHIEN_VALUE = new Set(['--host', '-H', '--jump', '-J', '--account'])
const SHIEN_SWITCH = new Set(['--accept-new-host-key', '--json'])

/**
 * Splits a command line typed as for docker (`run -d -p 8080 --host blade IMAGE CMD...`):
 * before the first word that is not a flag or a flag's value (the IMAGE or NAME), shien's own
 * flags are taken out and docker's stay, with their values; from that word on, everything is
 * docker's (the container's command may have flags of its own). After `--`, everything is
 * docker's too, as in `shien container run --host blade -- -d IMAGE`.
 */
export function splitDockerArgv(argv: readonly string[], kind: (flag: string) => FlagKind, o: {json: boolean}): DockerArgv {
  const shien: string[] = []
  const docker: string[] = []
  const unknown: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]
    if (word === '--') {
      docker.push(...argv.slice(i + 1))
      break
    }
    if (!word.startsWith('-') || word === '-') {
      docker.push(...argv.slice(i))
      break
    }
    const eq = word.startsWith('--') ? word.indexOf('=') : -1
    const flag = eq > 0 ? word.slice(0, eq) : word
    const into = SHIEN_VALUE.has(flag) || (SHIEN_SWITCH.has(flag) && (o.json || flag !== '--json')) ? shien : docker
    into.push(word)
    if (into === docker && kind(flag) === undefined) unknown.push(flag)
    const hasValue = SHIEN_VALUE.has(flag) || (into === docker && kind(flag) === 'value')
    if (hasValue && eq < 0 && i + 1 < argv.length) into.push(argv[++i])
  }
  return {shien, docker, unknown}
}

export const splitRunArgv = (argv: readonly string[]) => splitDockerArgv(argv, runFlagKind, {json: true})
/** exec has no --json: its output is the command's. */
export const splitExecArgv = (argv: readonly string[]) => splitDockerArgv(argv, execFlagKind, {json: false})

/**
 * A flag nobody knows is a wrong command line (USAGE, exit 2), as for any shien command; a
 * docker flag ie-docker refuses for a reason (--privileged, ...) is left for its parser, which
 * names it with the reason (FLAG_REFUSED, exit 6).
 */
export function refuseUnknownFlags(split: DockerArgv, command: string): void {
  if (split.unknown.length === 0) return
  const s = split.unknown.length > 1 ? 's' : ''
  throw new ShienError(`Nonexistent flag${s}: ${split.unknown.join(', ')}`, {
    code: 'USAGE',
    exit: 'usage',
    suggestions: [`Docker's flags that ie-docker does not allow are not passed on.`, `shien ${command} --help shows its arguments and flags.`],
  })
}
