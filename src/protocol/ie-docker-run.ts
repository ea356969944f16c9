import {ShienError} from '../errors.js'

/** A volume as the caller asked for it: their folder, the path in the container, read-only or not. */
export interface VolumeRequest {
  source: string
  target: string
  readOnly: boolean
}

/** `ie-docker run`'s command line, parsed; nothing in it has been checked against the rules yet. */
export interface RunRequest {
  name?: string
  image: string
  command: string[]
  interactive: boolean
  tty: boolean
  detach: boolean
  remove: boolean
  env: string[]
  volumes: VolumeRequest[]
  /** Container ports to publish; host ports come from the pool, never from the caller. */
  ports: number[]
  memory?: string
  cpus?: string
  user?: string
  workdir?: string
  hostname?: string
  entrypoint?: string
}

type Key = 'name' | 'env' | 'volume' | 'publish' | 'memory' | 'cpus' | 'user' | 'workdir' | 'hostname' | 'entrypoint'
type Switch = 'interactive' | 'tty' | 'detach' | 'remove'

/** The allow-list: every flag `run` accepts. Anything else is refused. */
const VALUE_FLAGS: Record<string, Key> = {
  '--name': 'name', '-e': 'env', '--env': 'env', '-v': 'volume', '--volume': 'volume',
  '-p': 'publish', '--publish': 'publish', '--expose': 'publish', '-m': 'memory', '--memory': 'memory',
  '--cpus': 'cpus', '-u': 'user', '--user': 'user', '-w': 'workdir', '--workdir': 'workdir',
  '-h': 'hostname', '--hostname': 'hostname', '--entrypoint': 'entrypoint',
}
const SWITCHES: Record<string, Switch> = {
  '-i': 'interactive', '--interactive': 'interactive', '-t': 'tty', '--tty': 'tty',
  '-d': 'detach', '--detach': 'detach', '--rm': 'remove',
}

/** Flags refused whatever their value, with the reason the student is shown. */
const REFUSED: Record<string, string> = {
  '--privileged': 'it would give the container full control of the blade',
  '--cap-add': 'extra capabilities let a container reach past its walls',
  '--device': "the blade's devices are not for containers",
  '--security-opt': 'the security profiles stay as the admin set them',
  '--pid': "containers keep their own process space (host's is refused)",
  '--network': 'containers stay on their own network; ports are published from the pool',
  '--net': 'containers stay on their own network; ports are published from the pool',
  '--ipc': "containers keep their own IPC (the host's is refused)",
  '--userns': "containers keep their user namespace (the host's is refused)",
  '--mount': 'folders are mounted with -v, from your storage folder only',
  '-P': "give each port with -p; the host ports come from the pool",
  '--publish-all': "give each port with -p; the host ports come from the pool",
  '--volumes-from': "another container's volumes are not yours to take",
}

/** What `run` makes of a flag: a switch, a flag with a value, one refused for a known reason, or one it does not know. */
export type FlagKind = 'switch' | 'value' | 'refused' | undefined

export function runFlagKind(flag: string): FlagKind {
  if (flag in SWITCHES) return 'switch'
  if (flag in VALUE_FLAGS) return 'value'
  if (flag in REFUSED) return 'refused'
  if (/^-[a-zA-Z]{2,}$/.test(flag) && [...flag.slice(1)].every((c) => `-${c}` in SWITCHES)) return 'switch'
  return undefined
}

export function refusedFlag(flag: string, why: string): ShienError {
  return new ShienError(`${flag} is not allowed: ${why}.`, {
    code: 'FLAG_REFUSED',
    exit: 'refused',
    suggestions: ['See what run accepts: ie-docker help'],
  })
}

export function runUsage(message: string): ShienError {
  return new ShienError(message, {code: 'USAGE', exit: 'usage', suggestions: ['Example: ie-docker run -d --name web IMAGE']})
}

/** Parses `run`'s arguments the way docker does: flags, then IMAGE, then the command. */
export function parseRunArgs(argv: readonly string[]): RunRequest {
  const req: Omit<RunRequest, 'image'> & {image?: string} = {
    command: [], interactive: false, tty: false, detach: false, remove: false, env: [], volumes: [], ports: [],
  }
  let i = 0
  while (i < argv.length && argv[i].startsWith('-') && argv[i] !== '-') {
    const [flag, inline] = splitFlag(argv[i])
    i++
    if (SWITCHES[flag]) {
      if (inline !== undefined && inline !== 'true') throw runUsage(`${flag} takes no value.`)
      req[SWITCHES[flag]] = true
    } else if (/^-[a-zA-Z]{2,}$/.test(flag)) {
      // Combined short switches, as in -it or -dit.
      for (const c of flag.slice(1)) {
        const s = SWITCHES[`-${c}`]
        if (s === undefined) throw unknownFlag(`-${c}`)
        req[s] = true
      }
    } else if (VALUE_FLAGS[flag]) {
      const value = inline ?? argv[i++]
      if (value === undefined) throw runUsage(`${flag} needs a value.`)
      setValue(req, VALUE_FLAGS[flag], flag, value)
    } else {
      throw unknownFlag(flag)
    }
  }
  if (i >= argv.length) throw runUsage('run needs an IMAGE.')
  return {...req, image: argv[i], command: argv.slice(i + 1)}
}

function splitFlag(arg: string): [string, string | undefined] {
  const eq = arg.indexOf('=')
  return arg.startsWith('--') && eq > 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined]
}

function unknownFlag(flag: string): ShienError {
  const why = REFUSED[flag]
  if (why) return refusedFlag(flag, why)
  return refusedFlag(flag, 'ie-docker run accepts only the flags listed in "ie-docker help"')
}

function setValue(req: Omit<RunRequest, 'image'>, key: Key, flag: string, value: string): void {
  switch (key) {
    case 'env':
      req.env.push(value)
      return
    case 'volume':
      req.volumes.push(parseVolume(value))
      return
    case 'publish':
      req.ports.push(parsePort(flag, value))
      return
    default:
      if (req[key] !== undefined) throw runUsage(`${flag} given twice.`)
      req[key] = value
  }
}

function parseVolume(value: string): VolumeRequest {
  const parts = value.split(':')
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === '')) {
    throw runUsage(`-v ${value}: write it as -v FOLDER:PATH or -v FOLDER:PATH:ro (named volumes are not offered).`)
  }
  if (parts[2] !== undefined && parts[2] !== 'ro' && parts[2] !== 'rw') throw runUsage(`-v ${value}: the only options are ro and rw.`)
  return {source: parts[0], target: parts[1], readOnly: parts[2] === 'ro'}
}

/** `-p 8080` or `-p 8080/tcp` only: a host port or address is the pool's to choose. */
function parsePort(flag: string, value: string): number {
  const m = /^([0-9]{1,5})(\/tcp)?$/.exec(value)
  if (m === null) {
    const hostPart = value.includes(':')
    throw new ShienError(
      hostPart ? `${flag} ${value}: host ports are not yours to pick; ie-docker takes one from its pool.` : `${flag} ${value} is not a TCP port.`,
      {code: hostPart ? 'FLAG_REFUSED' : 'USAGE', exit: hostPart ? 'refused' : 'usage', suggestions: [`Give the container's port only, e.g. ${flag} 8080.`]},
    )
  }
  const port = Number(m[1])
  if (port < 1 || port > 65_535) throw runUsage(`${flag} ${value} is not a port (1-65535).`)
  return port
}
