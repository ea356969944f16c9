import {execFileSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {homedir, userInfo} from 'node:os'
import {join} from 'node:path'

import {badInput, ShienError} from '../errors.js'

/** OpenSSH's StrictHostKeyChecking, as `ssh -G` prints it, in ssh_config(5)'s words. */
export type StrictHostKeyChecking = 'yes' | 'ask' | 'accept-new' | 'no'

/** Where and as whom to connect, after the OpenSSH client configuration was applied (`ssh -G`). */
export interface SshTarget {
  /** What the user typed (a Host alias or a host name). */
  alias: string
  hostName: string
  port: number
  user: string
  /** IdentityFile, tokens and `~` expanded; OpenSSH's defaults only where they exist. */
  identityFiles: string[]
  /** IdentitiesOnly: only the identity files are offered, the agent only for those keys. */
  identitiesOnly: boolean
  /** IdentityAgent: `SSH_AUTH_SOCK` (the default), `none`, or a socket path. */
  identityAgent: string
  /** UserKnownHostsFile (new keys go to the first; `none` lists none) and GlobalKnownHostsFile. */
  userKnownHostsFiles: string[]
  globalKnownHostsFiles: string[]
  strictHostKeyChecking: StrictHostKeyChecking
  hashKnownHosts: boolean
  /** HostKeyAlias: the name looked up in known_hosts instead of the host name. */
  hostKeyAlias?: string
  /** The ProxyJump hops to go through first, in the order they are connected. */
  via: SshTarget[]
  /** The file `ssh -G` was given with `-F` (undefined: OpenSSH's own choice); an `ssh` shien runs gets the same. */
  configFile?: string
}

export interface SshEnv {
  home?: string
  /** Overrides `~/.ssh/config` (like `ssh -F`). */
  configFile?: string
  /** ProxyJump hops from the command line (`-J`); `none` turns the config's off. */
  jump?: string
}

const MAX_HOPS = 8

/**
 * Resolves `[user@]host[:port]` with the machine's own OpenSSH (`ssh -G`), so that Include,
 * Match, ProxyJump and every default mean exactly what they mean to `ssh`; then each ProxyJump
 * hop the same way, with its own configuration.
 */
export function resolveSshTarget(spec: string, env: SshEnv = {}): SshTarget {
  const {user, host, port} = splitSpec(spec)
  // Checked here, not left to ssh: a hop is a host, never an option or a word for a shell.
  if (env.jump !== undefined && env.jump !== 'none') for (const hop of env.jump.split(',')) parseJumpHop(hop)
  return resolveHop({user, host, port, jump: env.jump}, env, 0)
}

interface HopSpec {
  user?: string
  host: string
  port?: number
  jump?: string
}

function resolveHop(hop: HopSpec, env: SshEnv, depth: number): SshTarget {
  if (depth > MAX_HOPS) {
    throw badConfig(`The ProxyJump chain to ${hop.host} is longer than ${MAX_HOPS} hops (does it loop?).`, hop.host)
  }
  const options = sshG(hop, env)
  const home = env.home ?? homedir()
  const one = (key: string) => options.get(key)?.[0]
  if (one('proxycommand') !== undefined && one('proxyjump') === undefined) {
    throw badConfig(`~/.ssh/config gives ${hop.host} a ProxyCommand, which shien does not run.`, hop.host, [
      `Use ProxyJump for ${hop.host} instead (ssh -J does the same as most ProxyCommand lines).`,
    ])
  }
  const hostName = one('hostname') ?? hop.host
  const user = one('user') ?? userInfo().username
  const port = Number(one('port') ?? 22)
  const tokens = {h: hostName, n: hop.host, p: String(port), r: user, u: userInfo().username, d: home}
  const configured = (options.get('identityfile') ?? []).map((f) => expandPath(f, home, tokens))
  return {
    alias: hop.host,
    hostName,
    port,
    user,
    identityFiles: configured.filter((file) => !isDefaultIdentity(file, home) || existsSync(file)),
    identitiesOnly: one('identitiesonly') === 'yes',
    identityAgent: expandPath(one('identityagent') ?? 'SSH_AUTH_SOCK', home, tokens),
    userKnownHostsFiles: (options.get('userknownhostsfile') ?? [join(home, '.ssh', 'known_hosts')]).filter((f) => f !== 'none').map((f) => expandPath(f, home, tokens)),
    globalKnownHostsFiles: (options.get('globalknownhostsfile') ?? []).filter((f) => f !== 'none').map((f) => expandPath(f, home, tokens)),
    strictHostKeyChecking: strictness(one('stricthostkeychecking')),
    hashKnownHosts: one('hashknownhosts') === 'yes',
    hostKeyAlias: one('hostkeyalias'),
    via: proxyChain(one('proxyjump'), env, depth),
    configFile: configFileFor(env),
  }
}

/** ProxyJump `a,b`: b is reached through a (as `ssh -J a b`), and a with its own configuration. */
function proxyChain(jump: string | undefined, env: SshEnv, depth: number): SshTarget[] {
  if (jump === undefined || jump === 'none') return []
  const hops = jump.split(',')
  const last = parseJumpHop(hops.at(-1)!)
  const before = hops.slice(0, -1).join(',')
  const proxy = resolveHop({...last, jump: before === '' ? undefined : before}, {...env, jump: undefined}, depth + 1)
  return [...proxy.via, {...proxy, via: []}]
}

/** Runs `ssh -G` for one host and reads its `keyword value` lines (repeated keywords keep every value). */
function sshG(hop: HopSpec, env: SshEnv): Map<string, string[]> {
  const args = ['-G']
  const config = configFileFor(env)
  if (config !== undefined) args.push('-F', config)
  if (hop.jump !== undefined) args.push('-J', hop.jump)
  if (hop.user !== undefined) args.push('-l', hop.user)
  if (hop.port !== undefined) args.push('-p', String(hop.port))
  args.push('--', hop.host)
  let output: string
  try {
    output = execFileSync('ssh', args, {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 15_000})
  } catch (error) {
    const {code, stderr} = error as NodeJS.ErrnoException & {stderr?: string}
    if (code === 'ENOENT') {
      throw new ShienError('OpenSSH (ssh) is not installed: shien reads your SSH configuration with "ssh -G".', {
        code: 'SSH_CONFIG', exit: 'badInput', suggestions: ['Install the OpenSSH client (it comes with macOS and most Linux systems).'], cause: error,
      })
    }
    const said = (stderr ?? '').trim().split('\n').filter((l) => !l.startsWith('Pseudo-terminal')).join(' ')
    throw badConfig(`Your SSH configuration for ${hop.host} is not usable: ${said || (error as Error).message}`, hop.host)
  }
  const options = new Map<string, string[]>()
  for (const line of output.split('\n')) {
    const space = line.indexOf(' ')
    if (space <= 0) continue
    const key = line.slice(0, space).toLowerCase()
    const value = line.slice(space + 1).trim()
    const values = key.endsWith('knownhostsfile') ? value.split(/\s+/) : [value]
    options.set(key, [...(options.get(key) ?? []), ...values])
  }
  return options
}

/**
 * Which file `ssh -G` reads: the account's own files when shien's home is the account's, else
 * (a HOME of its own) that home's `.ssh/config` alone. Undefined means OpenSSH's own choice; an
 * `ssh` shien starts is given the same `-F`.
 */
export function configFileFor(env: SshEnv): string | undefined {
  if (env.configFile !== undefined) return env.configFile
  if (env.home === undefined || env.home === userInfo().homedir) return undefined
  const file = join(env.home, '.ssh', 'config')
  return existsSync(file) ? file : '/dev/null'
}

function strictness(value: string | undefined): StrictHostKeyChecking {
  if (value === 'true' || value === 'yes') return 'yes'
  if (value === 'false' || value === 'no' || value === 'off') return 'no'
  if (value === 'accept-new') return 'accept-new'
  return 'ask'
}

const DEFAULT_IDENTITIES = new Set(['id_rsa', 'id_ecdsa', 'id_ecdsa_sk', 'id_ed25519', 'id_ed25519_sk', 'id_xmss', 'id_dsa'])

function isDefaultIdentity(file: string, home: string): boolean {
  const name = file.slice(join(home, '.ssh').length + 1)
  return file.startsWith(join(home, '.ssh') + '/') && DEFAULT_IDENTITIES.has(name)
}

/** `[user@]host[:port]` or `ssh://[user@]host[:port]`, as ProxyJump and -J take them. */
function parseJumpHop(hop: string): HopSpec {
  const spec = hop.trim().replace(/^ssh:\/\//, '').replace(/\/$/, '')
  return splitSpec(spec)
}

function splitSpec(spec: string): {user?: string; host: string; port?: number} {
  const match = /^(?:([^@\s]+)@)?(\[[^\]]+\]|[^:@\s/,-][^:@\s/,]*)(?::(\d+))?$/.exec(spec.trim())
  if (!match || /[;&|`$<>'"\\]/.test(spec)) {
    throw badInput('BAD_HOST', `"${spec}" is not a host. Use HOST, USER@HOST or HOST:PORT.`, [
      'Name the blade as in your ~/.ssh/config, e.g. --host blade1.',
    ])
  }
  const port = match[3] ? Number(match[3]) : undefined
  if (port !== undefined && (port < 1 || port > 65_535)) {
    throw badInput('BAD_HOST', `Port ${port} in "${spec}" is not a TCP port.`, ['Use a port from 1 to 65535.'])
  }
  return {user: match[1], host: match[2].replace(/^\[|\]$/g, ''), port}
}

/**
 * `~` and the tokens ssh_config(5) allows in IdentityFile, IdentityAgent and the known_hosts
 * files. Paths under the account's home move to shien's home (HOME), which `ssh -G` ignores.
 */
function expandPath(file: string, home: string, tokens: Record<string, string>): string {
  if (file === 'none' || file === 'SSH_AUTH_SOCK') return file
  if (file.startsWith('$')) return process.env[file.slice(1)] ?? ''
  const expanded = file.replace(/^~(?=\/|$)/, home).replace(/%([%a-zA-Z])/g, (all, t: string) => (t === '%' ? '%' : (tokens[t] ?? all)))
  const accountHome = userInfo().homedir
  return home !== accountHome && expanded.startsWith(accountHome + '/') ? join(home, expanded.slice(accountHome.length + 1)) : expanded
}

function badConfig(message: string, host: string, suggestions?: string[]): ShienError {
  return badInput('SSH_CONFIG', message, suggestions ?? [`Check what OpenSSH makes of it: ssh -G ${host}`])
}
