import {join} from 'node:path'

import {shellQuote} from '../../transport/remote-exec.js'
import {configFileFor, type SshTarget} from '../../transport/ssh-target.js'

/**
 * The name a VM's host keys are recorded under in known_hosts (OpenSSH's HostKeyAlias), and the
 * `Host` students give ssh: `shien-<account>-<slot>.<blade>`. `<blade>` is the blade's HostName
 * as `ssh -G` resolves it, lowercased, every character but a-z, 0-9, `.` and `-` made a `-`,
 * followed by `-<port>` when the blade's SSH port is not 22. It names the VM, not the port its
 * sshd is forwarded to, which the blade hands to other students' VMs too.
 */
export function vmHostKeyAlias(account: string, slot: string, blade: Pick<SshTarget, 'hostName' | 'port'>): string {
  const host = blade.hostName.toLowerCase().replace(/[^a-z0-9.-]/g, '-')
  return `shien-${account}-${slot}.${host}${blade.port === 22 ? '' : `-${blade.port}`}`
}

/**
 * How shien named the blade, kept so that an OpenSSH `ssh` it starts (or a config block it
 * prints) reaches the same blade: `[USER@]HOST[:PORT]` as given, the --jump hops, the home SSH
 * files are read under, and the `-F` file `ssh -G` was given (a HOME of its own).
 */
export interface BladeNaming {
  bladeSpec: string
  jump?: string
  home: string
  sshConfigFile?: string
}

/** The naming of a blade named by `spec`, with --jump `jump`, read under `home`. */
export function bladeNaming(spec: string, jump: string | undefined, home: string): BladeNaming {
  const configFile = configFileFor({home})
  return {bladeSpec: spec, ...(jump === undefined ? {} : {jump}), home, ...(configFile === undefined ? {} : {sshConfigFile: configFile})}
}

/** Everything OpenSSH needs to log in to a VM through its blade: what `vm ssh` runs and `vm ssh-config` prints. */
export interface VmLogin {
  /** The `Host` name, also the HostKeyAlias its keys are recorded under. */
  host: string
  /** Where the blade reaches the VM's sshd (its forwarded port). */
  hostName: string
  port: number
  user: string
  /** The blade as OpenSSH's ProxyJump takes it: the --jump hops first, then the blade as named. */
  proxyJump: string
  hostKeyAlias: string
  /** Where shien records the VM's host keys: the blade's first UserKnownHostsFile. */
  userKnownHostsFile: string
  /** The blade's identity settings: the key that logs in to the blade is the one harden installed. */
  identityFiles: string[]
  identitiesOnly: boolean
  /** IdentityAgent when the blade's is not the default (SSH_AUTH_SOCK). */
  identityAgent?: string
  /** `ssh -F FILE`, when shien reads another SSH configuration than the account's (a HOME of its own). */
  configFile?: string
}

/** The VM as `ie-virsh list` reports it: its account, slot and forward. */
export interface VmAddress {
  account: string
  slot: string
  host: string
  port: number
}

/**
 * How to log in to a VM through the blade shien resolved: the blade named as shien named it
 * (`bladeSpec`, after the --jump hops), so that OpenSSH's ProxyJump resolves the same host, user,
 * port and keys from the same configuration; `vagrant`, whose key harden installed.
 */
export function vmLogin(target: SshTarget, naming: BladeNaming, vm: VmAddress): VmLogin {
  const alias = vmHostKeyAlias(vm.account, vm.slot, target)
  const hops = naming.jump === undefined || naming.jump === 'none' ? [] : [naming.jump]
  return {
    host: alias,
    // The blade's forward listens on its loopback (or on every address): from the blade, itself.
    hostName: vm.host === 'localhost' ? '127.0.0.1' : vm.host,
    port: vm.port,
    user: 'vagrant',
    proxyJump: [...hops, naming.bladeSpec].join(','),
    hostKeyAlias: alias,
    userKnownHostsFile: knownHostsFileFor(target, naming),
    identityFiles: target.identityFiles,
    identitiesOnly: target.identitiesOnly,
    ...(target.identityAgent === 'SSH_AUTH_SOCK' ? {} : {identityAgent: target.identityAgent}),
    ...(naming.sshConfigFile === undefined ? {} : {configFile: naming.sshConfigFile}),
  }
}

/** The file a VM's keys are recorded in: the blade's first UserKnownHostsFile (`~/.ssh/known_hosts` when it has none). */
export function knownHostsFileFor(target: SshTarget, naming: Pick<BladeNaming, 'home'>): string {
  return target.userKnownHostsFiles[0] ?? join(naming.home, '.ssh', 'known_hosts')
}

/** The login's options in ssh_config(5)'s order and spelling (StrictHostKeyChecking yes: the keys are known). */
function options(login: VmLogin): Array<[string, string]> {
  return [
    ['HostName', login.hostName],
    ['Port', String(login.port)],
    ['User', login.user],
    ['ProxyJump', login.proxyJump],
    ['HostKeyAlias', login.hostKeyAlias],
    ['UserKnownHostsFile', login.userKnownHostsFile],
    ['StrictHostKeyChecking', 'yes'],
    ...login.identityFiles.map((file): [string, string] => ['IdentityFile', file]),
    ...(login.identitiesOnly ? [['IdentitiesOnly', 'yes'] as [string, string]] : []),
    ...(login.identityAgent === undefined ? [] : [['IdentityAgent', login.identityAgent] as [string, string]]),
  ]
}

/** A value as ssh_config(5) reads it: in double quotes when it holds a space. */
function configValue(value: string): string {
  return /\s/.test(value) ? `"${value}"` : value
}

/** The `Host` block to paste into ~/.ssh/config, so that plain ssh, scp and editors reach the VM. */
export function renderSshConfig(login: VmLogin): string {
  const lines = [`Host ${login.host}`, ...options(login).map(([key, value]) => `  ${key} ${configValue(value)}`)]
  return `${lines.join('\n')}\n`
}

/**
 * OpenSSH's arguments for the login, as an array (never a shell string): the options with -o,
 * the Host, then `command` after `--` when there is one.
 */
export function sshArgv(login: VmLogin, command: string[] = []): string[] {
  const config = login.configFile === undefined ? [] : ['-F', login.configFile]
  const opts = options(login).flatMap(([key, value]) => ['-o', `${key}=${configValue(value)}`])
  return [...config, ...opts, login.host, ...(command.length > 0 ? ['--', ...command] : [])]
}

/**
 * The login as one OpenSSH command a person types: the jump, the port, and the alias the VM's
 * keys are known under (never `[127.0.0.1]:PORT`, a port other students' VMs reuse); the known_hosts
 * file and `-F` only when they are not OpenSSH's defaults, the blade's keys with -i.
 */
export function loginCommand(login: VmLogin, home: string): string {
  const knownHosts = login.userKnownHostsFile === join(home, '.ssh', 'known_hosts') ? [] : ['-o', `UserKnownHostsFile=${login.userKnownHostsFile}`]
  const argv = [
    'ssh',
    ...(login.configFile === undefined ? [] : ['-F', login.configFile]),
    '-J', login.proxyJump,
    '-p', String(login.port),
    '-o', `HostKeyAlias=${login.hostKeyAlias}`,
    ...knownHosts,
    ...login.identityFiles.flatMap((file) => ['-i', file]),
    `${login.user}@${login.hostName}`,
  ]
  return argv.map(shellQuote).join(' ')
}
