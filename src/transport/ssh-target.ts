import {existsSync, readFileSync} from 'node:fs'
import {homedir, userInfo} from 'node:os'
import {join} from 'node:path'

import SSHConfig from 'ssh-config'

import {badInput} from '../errors.js'

/** Where and as whom to connect, after `~/.ssh/config` was applied. */
export interface SshTarget {
  /** What the user typed (a Host alias or a host name). */
  alias: string
  hostName: string
  port: number
  user: string
  /** Identity files named by the config, or OpenSSH's defaults that exist. */
  identityFiles: string[]
  /** Whether IdentityFile came from the config (then only those are offered). */
  identitiesOnly: boolean
}

export interface SshEnv {
  home?: string
  /** Overrides `~/.ssh/config` (like `ssh -F`). */
  configFile?: string
}

const DEFAULT_IDENTITIES = ['id_ed25519', 'id_ecdsa', 'id_rsa']

/**
 * Resolves `[user@]host[:port]` through `~/.ssh/config` the way OpenSSH does for the keywords
 * shien uses: Host, HostName, Port, User, IdentityFile, IdentitiesOnly.
 */
export function resolveSshTarget(spec: string, env: SshEnv = {}): SshTarget {
  const home = env.home ?? homedir()
  const {user: explicitUser, host, port: explicitPort} = splitSpec(spec)
  const configPath = env.configFile ?? join(home, '.ssh', 'config')
  const computed = existsSync(configPath)
    ? SSHConfig.parse(readFileSync(configPath, 'utf8')).compute(host)
    : {}
  const first = (key: string): string | undefined => {
    const value = computed[key]
    return Array.isArray(value) ? value[0] : value
  }
  const identityFiles = ([] as string[]).concat(computed.IdentityFile ?? []).map((f) => expandPath(f, home, host))
  const port = explicitPort ?? Number(first('Port') ?? 22)
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw badInput('BAD_HOST', `Port "${first('Port')}" for host "${host}" is not a TCP port.`, [
      `Fix the Port line for "${host}" in ${configPath}.`,
    ])
  }
  return {
    alias: host,
    hostName: first('HostName')?.replaceAll('%h', host) ?? host,
    port,
    user: explicitUser ?? first('User') ?? userInfo().username,
    identityFiles:
      identityFiles.length > 0
        ? identityFiles
        : DEFAULT_IDENTITIES.map((n) => join(home, '.ssh', n)).filter((f) => existsSync(f)),
    identitiesOnly: identityFiles.length > 0 && (first('IdentitiesOnly') ?? 'no').toLowerCase() === 'yes',
  }
}

function splitSpec(spec: string): {user?: string; host: string; port?: number} {
  const match = /^(?:([^@\s]+)@)?(\[[^\]]+\]|[^:@\s]+)(?::(\d+))?$/.exec(spec.trim())
  if (!match) {
    throw badInput('BAD_HOST', `"${spec}" is not a host. Use HOST, USER@HOST or HOST:PORT.`, [
      'Name the blade as in your ~/.ssh/config, e.g. --host blade1.',
    ])
  }
  return {user: match[1], host: match[2].replace(/^\[|\]$/g, ''), port: match[3] ? Number(match[3]) : undefined}
}

function expandPath(file: string, home: string, host: string): string {
  return file.replace(/^~(?=\/|$)/, home).replaceAll('%d', home).replaceAll('%h', host)
}
