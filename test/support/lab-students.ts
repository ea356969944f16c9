import {chown, mkdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {execa} from 'execa'

import {ensureUser} from './system.js'

/**
 * The cluster lab's students (cluster-lab.ts): their accounts as the blades' sshds need them, and
 * each one's laptop home, whose .ssh/config names the lab's blades.
 */

export const LAB_STUDENTS = ['shien-cl1', 'shien-cl2'] as const
export type LabStudentName = (typeof LAB_STUDENTS)[number]
/** The group `shien admin provision` is run for, so the lab's storage holds these students only. */
export const LAB_GROUP = 'shien-cluster-lab'
export type LabBladeName = 'blade-a' | 'blade-b'

/** What a laptop knows of a blade: its name (the Host alias) and its sshd. */
export interface LaptopView {
  name: LabBladeName
  sshd: {port: number; knownHostsLine: string}
}

export interface LabStudent {
  account: LabStudentName
  uid: number
  gid: number
  /** The laptop: .ssh/id_ed25519, .ssh/config (Host blade-a, blade-b) and .ssh/known_hosts. */
  laptopHome: string
  sshConfig: string
  /** users/<account>/images on the shared storage. */
  images: string
  incoming: string
  /** OpenSSH as this student to a blade; each argument is quoted for the remote shell. Never throws. */
  ssh(blade: LabBladeName, ...command: string[]): Promise<SshResult>
}

/** What a command run over SSH gave: exit code 255 is OpenSSH's own failure (stderr says why). */
export interface SshResult {
  exitCode: number
  stdout: string
  stderr: string
}

/** The lab's accounts: a shell for sshd's sessions, a home of the lab's, the sudo rule's group and the lab's. */
export async function makeLabAccounts(homes: string): Promise<Record<LabStudentName, {uid: number; gid: number}>> {
  await execa('groupadd', ['-f', 'shien-admin'])
  const ids = {} as Record<LabStudentName, {uid: number; gid: number}>
  for (const account of LAB_STUDENTS) {
    const uid = await ensureUser(account, ['shien-users', LAB_GROUP])
    const gid = Number((await execa('id', ['-g', account])).stdout)
    const home = join(homes, account)
    await mkdir(home, {mode: 0o700})
    await chown(home, uid, gid)
    // sshd with UsePAM no refuses a locked account ("!", as useradd leaves it); "*" is no password, not locked.
    await execa('usermod', ['--shell', '/bin/bash', '--home', home, '--password', '*', account])
    ids[account] = {uid, gid}
  }
  return ids
}

/** A student's laptop home in `dir/laptops/` (root's: the test is the laptop), the key authorized in `dir/keys/`. */
export async function makeLaptop(o: {dir: string; storageRoot: string; account: LabStudentName; id: {uid: number; gid: number}; blades: LaptopView[]}): Promise<LabStudent> {
  const {dir, storageRoot, account, id, blades} = o
  const laptopHome = join(dir, 'laptops', account)
  const dotSsh = join(laptopHome, '.ssh')
  await mkdir(dotSsh, {recursive: true, mode: 0o700})
  const key = join(dotSsh, 'id_ed25519')
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${account}@laptop`, '-f', key])
  await writeFile(join(dir, 'keys', account), await readFile(`${key}.pub`), {mode: 0o644})
  const knownHosts = join(dotSsh, 'known_hosts')
  await writeFile(knownHosts, `${blades.map((b) => b.sshd.knownHostsLine).join('\n')}\n`, {mode: 0o644})
  const sshConfig = join(dotSsh, 'config')
  await writeFile(sshConfig, blades.map((b) => [
    `Host ${b.name}`,
    '  HostName 127.0.0.1',
    `  Port ${b.sshd.port}`,
    `  User ${account}`,
    `  IdentityFile ${key}`,
    '  IdentitiesOnly yes',
    `  UserKnownHostsFile ${knownHosts}`,
    '  StrictHostKeyChecking yes',
    '  BatchMode yes',
    '  ConnectTimeout 10',
    '',
  ].join('\n')).join('') + [
    // The blades by the address the cluster gives them (vm ssh's ProxyJump to a VM on the other
    // blade): OpenSSH takes ~ from the passwd entry, not from the laptop's $HOME, so this
    // laptop's key and known_hosts are named here as a student's own ~/.ssh would hold them.
    'Host 127.0.0.1',
    `  IdentityFile ${key}`,
    '  IdentitiesOnly yes',
    `  UserKnownHostsFile ${knownHosts}`,
    '  StrictHostKeyChecking yes',
    '  BatchMode yes',
    '',
  ].join('\n'), {mode: 0o600})
  const home = join(storageRoot, 'users', account)
  return {
    account,
    ...id,
    laptopHome,
    sshConfig,
    images: join(home, 'images'),
    incoming: join(home, 'incoming'),
    // -F: OpenSSH takes ~ from the passwd entry, not $HOME; HOME is for shien's own laptop side.
    ssh: async (blade, ...command) => {
      const r = await execa('ssh', ['-F', sshConfig, blade, '--', ...command.map(shellQuote)], {reject: false, env: {HOME: laptopHome}})
      return {exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr)}
    },
  }
}

/** Back as ensureUser leaves an account (kept: uids must stay stable): no shell, no home of the lab's. */
export async function resetLabAccount(account: LabStudentName): Promise<void> {
  await execa('usermod', ['--shell', '/usr/sbin/nologin', '--home', `/home/${account}`, account])
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`
}
