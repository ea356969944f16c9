import {spawn, type ChildProcess} from 'node:child_process'
import {existsSync, openSync, closeSync} from 'node:fs'
import {readFile, readdir, readlink, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {execa} from 'execa'

import {closedPort} from './system.js'

/**
 * An OpenSSH sshd standing for one blade of the cluster lab (cluster-lab.ts): its own host key,
 * config, log and free loopback port, in a mount namespace of its own
 * (`unshare --mount --propagation private`) in which `etcShien` is bound over /etc/shien. So
 * every session it opens, and the `sudo ie-virsh` run in it, reads `etcShien/config.json` as
 * /etc/shien/config.json, while the host (and every other namespace) keeps its own.
 *
 * The folder is bound rather than the file: a file bind is undone when the host's file is
 * replaced by a rename (Linux detaches mounts on a dentry renamed over in another namespace),
 * which is how scripts/local-blade.sh rewrites the config.
 */
export interface BladeSshd {
  port: number
  /** `[127.0.0.1]:PORT ssh-ed25519 ...`: its host key, for a laptop's known_hosts. */
  knownHostsLine: string
  /** The listener's pid; every process of its namespace is one of this sshd's. */
  pid: number
  /** `mnt:[INODE]`: the namespace's identity, to find its processes. */
  namespace: string
  log: string
  /** A file as the blade's sessions see it (read from inside the namespace). */
  readInside(path: string): Promise<string>
  /** Processes still in the namespace (the listener, sessions, what they ran). */
  processes(): Promise<number[]>
  /** Stops the listener and every process of its namespace; the namespace and its mount go with them. */
  stop(): Promise<void>
  /** Starts it again after a stop, on the same port with the same host key and config (a new namespace). */
  restart(): Promise<void>
}

/**
 * Binds the blade's /etc/shien inside the new namespace (and, when given, a `shien` of the
 * test's over /usr/local/bin/shien), then becomes sshd (the same pid).
 */
const NAMESPACE_SCRIPT = `set -eu
mount --bind "$1" /etc/shien
if [ -n "$4" ]; then mount --bind "$4" /usr/local/bin/shien; fi
exec /usr/sbin/sshd -D -f "$2" -E "$3"
`

export interface BladeSshdOptions {
  dir: string
  etcShien: string
  users: string[]
  authorizedKeys: string
  /** A program the blade's sessions run as `shien` (`shien blade ...`) instead of the installed one. */
  shien?: string
}

export async function startBladeSshd(o: BladeSshdOptions): Promise<BladeSshd> {
  if (!existsSync('/etc/shien')) throw new Error('/etc/shien is not there: the blade sshd binds its own folder over it (run on a machine with shien installed).')
  const hostKey = join(o.dir, 'ssh_host_ed25519_key')
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', o.dir, '-f', hostKey])
  const port = await closedPort()
  const conf = join(o.dir, 'sshd_config')
  const log = join(o.dir, 'sshd.log')
  await writeFile(conf, sshdConfig({port, hostKey, pidFile: join(o.dir, 'sshd.pid'), users: o.users, authorizedKeys: o.authorizedKeys}))
  await execa('/usr/sbin/sshd', ['-t', '-f', conf])
  const hostKeyPub = (await readFile(`${hostKey}.pub`, 'utf8')).split(' ').slice(0, 2).join(' ')
  let running = await launch({...o, conf, log})
  const processes = () => processesIn(running.namespace)
  return {
    port,
    knownHostsLine: `[127.0.0.1]:${port} ${hostKeyPub}`,
    get pid() {
      return running.pid
    },
    get namespace() {
      return running.namespace
    },
    log,
    readInside: async (path) => (await execa('nsenter', ['-t', String(running.pid), '-m', 'cat', path])).stdout,
    processes,
    stop: () => running.stop(),
    restart: async () => {
      await running.stop()
      running = await launch({...o, conf, log})
    },
  }
}

interface Launched {
  pid: number
  namespace: string
  stop(): Promise<void>
}

async function launch(o: BladeSshdOptions & {conf: string; log: string}): Promise<Launched> {
  // A restart appends to the same log: what counts is a "Server listening" line after what is there.
  const before = (await readFile(o.log, 'utf8').catch(() => '')).length
  const out = openSync(join(o.dir, 'namespace.log'), 'a')
  const child = spawn('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', NAMESPACE_SCRIPT, 'sh', o.etcShien, o.conf, o.log, o.shien ?? ''], {
    stdio: ['ignore', out, out],
  })
  closeSync(out)
  const exited = new Promise((resolve) => child.once('exit', resolve))
  let namespace = ''
  const processes = () => (namespace ? processesIn(namespace) : Promise.resolve([]))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    await exited
    // Sessions outlive their listener; they are this sshd's alone (its namespace), so all go.
    for (let i = 0; i < 50; i++) {
      const left = await processes()
      if (left.length === 0) return
      for (const pid of left) signalQuietly(pid, i < 10 ? 'SIGTERM' : 'SIGKILL')
      await pause(100)
    }
    throw new Error(`processes of the blade sshd's namespace ${namespace} do not end: ${(await processes()).join(', ')}`)
  }
  try {
    await waitForListening(o.log, before, child, join(o.dir, 'namespace.log'))
    namespace = await readlink(`/proc/${child.pid}/ns/mnt`)
    if (namespace === (await readlink('/proc/self/ns/mnt'))) throw new Error('the blade sshd runs in the host\'s mount namespace')
    return {pid: child.pid!, namespace, stop}
  } catch (error) {
    await stop()
    throw error
  }
}

function sshdConfig(o: {port: number; hostKey: string; pidFile: string; users: string[]; authorizedKeys: string}): string {
  return [
    `Port ${o.port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${o.hostKey}`,
    `PidFile ${o.pidFile}`,
    'UsePAM no',
    'PermitRootLogin no',
    `AllowUsers ${o.users.join(' ')}`,
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    // Root's files in the lab's folder under /tmp (sticky, world-writable), which StrictModes refuses.
    `AuthorizedKeysFile ${join(o.authorizedKeys, '%u')}`,
    'StrictModes no',
    'X11Forwarding no',
    'PrintMotd no',
    'MaxSessions 20',
    'MaxStartups 50',
    'Subsystem sftp internal-sftp',
    'LogLevel VERBOSE',
    '',
  ].join('\n')
}

async function waitForListening(log: string, from: number, child: ChildProcess, namespaceLog: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (/Server listening/.test((await readFile(log, 'utf8').catch(() => '')).slice(from))) return
    if (child.exitCode !== null) break
    await pause(100)
  }
  const why = `${await readFile(namespaceLog, 'utf8').catch(() => '')}${await readFile(log, 'utf8').catch(() => 'no log')}`
  throw new Error(`the blade sshd did not start: ${why}`)
}

/** Every process whose mount namespace is `namespace` (`mnt:[INODE]`). */
export async function processesIn(namespace: string): Promise<number[]> {
  const pids: number[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    if ((await readlink(`/proc/${entry}/ns/mnt`).catch(() => '')) === namespace) pids.push(Number(entry))
  }
  return pids
}

function signalQuietly(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name)
  } catch {
    // Gone meanwhile.
  }
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
