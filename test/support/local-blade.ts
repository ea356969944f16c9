import {readFile} from 'node:fs/promises'

import {execa} from 'execa'

import {REPO_ROOT} from './cli.js'

export {REPO_ROOT}

/** Written by `scripts/local-blade.sh up`. */
export const BLADE_JSON_PATH = '/var/lib/shien-blade/blade.json'

/**
 * This machine set up as a blade by `scripts/local-blade.sh up`: an sshd on loopback, two student
 * accounts, per-user storage, and a "laptop" home per student with a key, known_hosts and an ssh
 * config whose `Host blade` (hostAlias) reaches the blade as that student.
 */
export interface LocalBlade {
  host: string
  port: number
  /** `Host` alias in the laptops' `.ssh/config`. */
  hostAlias: string
  /** The student the first laptop logs in as. */
  account: string
  /** A second student, for cross-account tests. */
  otherAccount: string
  /** HOME of the first student's laptop: `.ssh/id_ed25519`, `.ssh/known_hosts`, `.ssh/config`. */
  laptopHome: string
  otherLaptopHome: string
  identityFile: string
  knownHosts: string
  sshConfig: string
  otherIdentityFile: string
  otherKnownHosts: string
  otherSshConfig: string
  /** Root of the blade's storage: users/<account>/{incoming,images}, boxes/. */
  storageRoot: string
  /** The blade's host key, as `ssh-keygen -l` prints it (`SHA256:...`). */
  hostKeyFingerprint: string
  /** `/etc/shien/config.json`. */
  configFile: string
  /** Where the package is installed for the blade side (`/opt/shien`). */
  installDir: string
  usersGroup: string
  adminGroup: string
  libvirtUri: string
  /** The blade's own files: sshd config, host key, pid file, laptops. */
  stateDir: string
}

let pending: Promise<LocalBlade> | undefined

/**
 * Sets this machine up as a local blade (once per process) and describes it. Needs root and a
 * built package (`npm run build`); the first run on a machine takes about half a minute.
 */
export function ensureLocalBlade(): Promise<LocalBlade> {
  pending ??= setUp().catch((error: unknown) => {
    pending = undefined
    throw error
  })
  return pending
}

async function setUp(): Promise<LocalBlade> {
  if (process.getuid?.() !== 0) {
    throw new Error('The local blade needs root: run the integration tests as root (scripts/local-blade.sh up).')
  }
  // The test command (scripts/test.sh) sets the blade up once before both projects start; a
  // second `up` from a project while the other's tests run could rewrite a laptop's files under them.
  if (process.env.SHIEN_LOCAL_BLADE_UP === '1') return JSON.parse(await readFile(BLADE_JSON_PATH, 'utf8')) as LocalBlade
  const result = await execa('bash', ['scripts/local-blade.sh', 'up'], {
    cwd: REPO_ROOT,
    all: true,
    reject: false,
    timeout: 15 * 60_000,
  })
  if (result.exitCode !== 0) {
    const output = (result.all ?? '').split('\n').slice(-30).join('\n')
    throw new Error(`scripts/local-blade.sh up failed (exit ${String(result.exitCode)}):\n${output}`)
  }
  return JSON.parse(await readFile(BLADE_JSON_PATH, 'utf8')) as LocalBlade
}

/**
 * ssh arguments that reach the blade from one of the laptops with OpenSSH's client, verifying
 * the host key. Append the remote command.
 */
export function bladeSshArgs(blade: LocalBlade, laptop: 'student' | 'other' = 'student'): string[] {
  const [config, knownHosts] =
    laptop === 'student' ? [blade.sshConfig, blade.knownHosts] : [blade.otherSshConfig, blade.otherKnownHosts]
  return [
    '-F', config,
    '-o', `UserKnownHostsFile=${knownHosts}`,
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'BatchMode=yes',
    blade.hostAlias,
  ]
}
