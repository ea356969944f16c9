import {realpath} from 'node:fs/promises'
import {hostname} from 'node:os'

import type {Directory} from '../directory/directory.js'
import {openDirectory} from '../directory/open-directory.js'
import {ShienError} from '../errors.js'
import {getentGid, getentLookup, getentUid, resolveCaller, type AccountLookup, type Caller, type PrivilegedTool} from './caller.js'
import {packageInfo, type PackageInfo} from '../package-info.js'
import {resolveStanding, type Owner, type Standing} from './standing.js'
import {loadTrustedConfig} from './trusted-config.js'
import {DEFAULT_CONFIG_PATH, type BladeConfig} from '../config/blade-config.js'
import {userPaths} from '../config/storage-layout.js'

export type {PrivilegedTool} from './caller.js'

/** What both privileged commands need from the outside world; tests replace parts of it. */
export interface PrivilegedDeps {
  /** /etc/shien/config.json; a parameter for tests only, never read from argv or env. */
  configPath: string
  /** The process environment; only SUDO_UID is read from it. */
  env: Readonly<Record<string, string | undefined>>
  realUid: number
  lookupAccount: AccountLookup
  /** An account name's uid, for an admin's --account. */
  lookupUid: (account: string) => Promise<number | undefined>
  /** The primary gid of a uid: what is done as the owner is done as uid:gid. */
  lookupGid: (uid: number) => Promise<number>
  directory: (config: BladeConfig) => Directory
  pkg: PackageInfo
  /** This blade's name. */
  hostname: string
  stdout: (text: string) => void
  stderr: (text: string) => void
}

/** The real world for PrivilegedDeps: /etc/shien/config.json, getent (NSS), the directory the config names. */
export function defaultPrivilegedDeps(): PrivilegedDeps {
  return {
    configPath: DEFAULT_CONFIG_PATH,
    env: process.env,
    realUid: process.getuid?.() ?? -1,
    lookupAccount: getentLookup,
    lookupUid: getentUid,
    lookupGid: getentGid,
    directory: openDirectory,
    pkg: packageInfo(),
    hostname: hostname(),
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
  }
}

/** Who runs the command, what they may do, and whose storage it acts on. */
export interface PrivilegedRun extends Standing {
  caller: Caller
  /** Whose things the command acts on, with the primary gid that work as them runs with. */
  owner: Owner & {gid: number}
  config: BladeConfig
  /** The storage root with every link resolved. */
  root: string
  /** The owner's folders under it. */
  paths: ReturnType<typeof userPaths>
}

/**
 * The start of every ie-virsh and ie-docker run: the caller from SUDO_UID, the root-owned
 * configuration, the caller's standing in the directory (and the account an admin named with
 * --account), and the owner's storage folders.
 */
export async function resolvePrivilegedRun(tool: PrivilegedTool, deps: PrivilegedDeps, signal: AbortSignal, account?: string): Promise<PrivilegedRun> {
  const caller = await resolveCaller(deps.env, deps.realUid, deps.lookupAccount, tool)
  const config = loadTrustedConfig(deps.configPath)
  const standing = await resolveStanding({
    caller, directory: deps.directory(config), account, lookupUid: deps.lookupUid, signal, things: tool === 'ie-docker' ? 'containers' : 'VMs',
  })
  const root = await realpath(config.storageRoot).catch(() => {
    throw new ShienError(`The storage root ${config.storageRoot} is not there.`, {
      code: 'STORAGE_MISSING',
      exit: 'remote',
      suggestions: ['Ask an admin: the shared storage may not be mounted on this blade.'],
    })
  })
  const owner = {...standing.owner, gid: await deps.lookupGid(standing.owner.uid)}
  return {...standing, owner, caller, config, root, paths: userPaths(root, owner.account)}
}
