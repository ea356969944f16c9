import {spawn, type ChildProcess} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'

import {closedPort} from './system.js'

/**
 * A blade and two "VMs" of the test's own, each a real OpenSSH sshd on a loopback port (never
 * the local blade): the blade answers shien's calls (`sudo -n ie-virsh ...`, `shien blade ...`)
 * from JSON files the test writes, as the real ones would, and logs each command; it forwards
 * TCP as a blade does for ProxyJump. vm1 and vm2 are plain sshds with host keys of their own
 * (the VM before and after a push with --replace). All log in as root with `clientKey`.
 */
export interface VmLab {
  dir: string
  bladePort: number
  vmPorts: [number, number]
  /** `TYPE BASE64` of each VM's host key. */
  vmHostKeys: [string, string]
  /** A known_hosts line for the blade. */
  bladeKnownHost: string
  clientKey: string
  /** Sets what the blade answers to a command starting with `prefix` (its stdout, then exit 0). */
  answer(prefix: keyof typeof FILES, json: unknown): void
  /** The commands the blade was asked to run, in order. */
  commands(): string[]
  /** How many logins the blade's sshd accepted so far (a ProxyJump through it is one). */
  bladeLogins(): number
  stop(): Promise<void>
}

const FILES = {
  'ie-virsh list': 'list.json', 'ie-virsh facts': 'facts.json', 'ie-virsh shutdown': 'shutdown.json', 'ie-virsh dumpxml': 'dumpxml.json',
  'ie-virsh undefine': 'undefine.json', 'ie-virsh debug': 'debug.json', 'blade host-keys': 'host-keys.json', 'blade hello': 'hello.json',
} as const

function forced(dir: string): string {
  return `#!/bin/sh
printf '%s\\n' "$SSH_ORIGINAL_COMMAND" >> ${dir}/commands.log
case "$SSH_ORIGINAL_COMMAND" in
  "sudo -n ie-virsh list "*) exec cat ${dir}/list.json;;
  "sudo -n ie-virsh facts "*) exec cat ${dir}/facts.json;;
  "sudo -n ie-virsh shutdown "*) exec cat ${dir}/shutdown.json;;
  "sudo -n ie-virsh dumpxml "*) exec cat ${dir}/dumpxml.json;;
  "sudo -n ie-virsh undefine "*) exec cat ${dir}/undefine.json;;
  "sudo -n ie-virsh debug "*) exec cat ${dir}/debug.json;;
  "shien blade host-keys "*) exec cat ${dir}/host-keys.json;;
  "shien blade hello "*) exec cat ${dir}/hello.json;;
esac
echo '{"error":{"code":"LAB_UNEXPECTED","message":"the lab blade does not run that","exitCode":5,"suggestions":[]}}'
exit 5
`
}

function sshdConfig(dir: string, name: string, port: number): string {
  return [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${join(dir, `${name}_host`)}`,
    `PidFile ${join(dir, `${name}.pid`)}`,
    'UsePAM no',
    'StrictModes no',
    'PermitRootLogin prohibit-password',
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'AllowTcpForwarding yes',
    ...(name === 'blade' ? [`ForceCommand ${join(dir, 'forced.sh')}`] : []),
    'LogLevel VERBOSE',
    '',
  ].join('\n')
}

async function keygen(file: string): Promise<string> {
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', '', '-f', file])
  return readFileSync(`${file}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ')
}

async function startSshd(dir: string, name: string, children: ChildProcess[]): Promise<number> {
  const port = await closedPort()
  writeFileSync(join(dir, `${name}.conf`), sshdConfig(dir, name, port))
  const log = join(dir, `${name}.log`)
  const child = spawn('/usr/sbin/sshd', ['-D', '-f', join(dir, `${name}.conf`), '-E', log], {stdio: 'ignore'})
  children.push(child)
  for (let i = 0; i < 100; i++) {
    if (existsSync(log) && /Server listening/.test(readFileSync(log, 'utf8'))) return port
    if (child.exitCode !== null) break
    await new Promise((f) => setTimeout(f, 100))
  }
  throw new Error(`sshd ${name} did not start: ${existsSync(log) ? readFileSync(log, 'utf8') : 'no log'}`)
}

export async function startVmLab(): Promise<VmLab> {
  const dir = mkdtempSync(join(tmpdir(), 'vm-lab-'))
  const children: ChildProcess[] = []
  const stop = async () => {
    for (const child of children.toReversed()) if (child.exitCode === null) child.kill('SIGTERM')
    rmSync(dir, {recursive: true, force: true})
  }
  try {
    const bladeKey = await keygen(join(dir, 'blade_host'))
    const vmHostKeys: [string, string] = [await keygen(join(dir, 'vm1_host')), await keygen(join(dir, 'vm2_host'))]
    const clientKey = join(dir, 'client')
    await keygen(clientKey)
    writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${clientKey}.pub`))
    writeFileSync(join(dir, 'forced.sh'), forced(dir), {mode: 0o755})
    writeFileSync(join(dir, 'commands.log'), '')
    const bladePort = await startSshd(dir, 'blade', children)
    const vmPorts: [number, number] = [await startSshd(dir, 'vm1', children), await startSshd(dir, 'vm2', children)]
    return {
      dir,
      bladePort,
      vmPorts,
      vmHostKeys,
      bladeKnownHost: `[127.0.0.1]:${bladePort} ${bladeKey}`,
      clientKey,
      answer: (prefix, json) => writeFileSync(join(dir, FILES[prefix]), JSON.stringify(json)),
      commands: () => readFileSync(join(dir, 'commands.log'), 'utf8').split('\n').filter((l) => l.length > 0),
      bladeLogins: () => (readFileSync(join(dir, 'blade.log'), 'utf8').match(/Accepted publickey for root/g) ?? []).length,
      stop,
    }
  } catch (error) {
    await stop()
    throw error
  }
}

/**
 * A laptop home for the lab blades: `~/.ssh/config` naming the first blade `labblade` (as root,
 * with the lab's client key), `127.0.0.1` with the same key and known_hosts file (the cluster's
 * other blades by address), and `~/.ssh/known_hosts` with the blades' host keys.
 */
export function labLaptopHome(prefix: string, blades: VmLab[]): {home: string; knownHosts: string} {
  const [first] = blades
  const home = mkdtempSync(join(tmpdir(), prefix))
  const knownHosts = join(home, '.ssh', 'known_hosts')
  mkdirSync(join(home, '.ssh'), {mode: 0o700})
  writeFileSync(knownHosts, blades.map((b) => `${b.bladeKnownHost}\n`).join(''), {mode: 0o600})
  writeFileSync(join(home, '.ssh', 'config'), [
    'Host labblade 127.0.0.1',
    '  HostName 127.0.0.1',
    '  User root',
    `  IdentityFile ${first.clientKey}`,
    '  IdentitiesOnly yes',
    `  UserKnownHostsFile ${knownHosts}`,
    '',
    'Host labblade',
    `  Port ${first.bladePort}`,
    '',
  ].join('\n'))
  return {home, knownHosts}
}
