import {spawn, type ChildProcess} from 'node:child_process'
import {randomUUID} from 'node:crypto'
import {openSync, closeSync} from 'node:fs'
import {mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {execa} from 'execa'

/**
 * A second libvirtd on this machine, a blade of its own to libvirt: its own mount and UTS
 * namespaces (hostname `name`), its own /run/libvirt, /etc/libvirt, /var/lib/libvirt,
 * /var/cache/libvirt and /var/log/libvirt (temporary folders bound over the real ones inside the
 * namespace), its own virtlogd and a host UUID of its own. Everything else (the network, /tmp,
 * the storage the test makes there) is shared with the host, as a blade shares the GFS2 volume.
 * The host's libvirtd, its domains and its folders are never touched.
 */
export interface SecondLibvirtd {
  /** The namespace's hostname (what `virsh hostname` answers on it). */
  name: string
  /** The host UUID in its libvirtd.conf: the one libvirt's "same host" check compares. */
  hostUuid: string
  /** How the host reaches it: `qemu+unix:///system?socket=<dir>/run/libvirt-sock`. */
  uri: string
  /** How it reaches the host's libvirtd (for --p2p from it): the host's socket folder, bound inside the namespace. */
  hostUri: string
  /** Its incoming migration ports, apart from the host's default 49152-49215. */
  migrationPorts: {from: number; to: number}
  dir: string
  /** virsh on this daemon; never throws (exit code and output are the caller's to check). */
  virsh(...args: string[]): ReturnType<typeof execa>
  /** The end of its libvirtd log, for failure messages. */
  logTail(lines?: number): Promise<string>
  /** Destroys its domains, stops its libvirtd and virtlogd, removes its folders. Safe to call twice. */
  stop(): Promise<void>
}

/** The folders bound over the host's inside the namespace, by their name under `dir`. */
const BINDS: Record<string, string> = {
  run: '/run/libvirt',
  etc: '/etc/libvirt',
  lib: '/var/lib/libvirt',
  cache: '/var/cache/libvirt',
  log: '/var/log/libvirt',
}

/**
 * Runs inside the new namespaces as `sh -c SCRIPT sh DIR NAME`. The host's /run/libvirt is bound
 * at DIR/host-run before it is covered, so this daemon can still reach the host's (--p2p back).
 * libvirtd runs in the foreground; when it ends, its virtlogd is stopped and the namespace ends.
 */
const NAMESPACE_SCRIPT = `set -eu
dir=$1
hostname "$2"
mount --bind /run/libvirt "$dir/host-run"
${Object.entries(BINDS).map(([name, path]) => `mount --bind "$dir/${name}" ${path}`).join('\n')}
virtlogd --pid-file "$dir/virtlogd.pid" &
logd=$!
status=0
libvirtd --pid-file "$dir/libvirtd.pid" || status=$?
kill "$logd" 2>/dev/null || true
wait "$logd" || true
exit "$status"
`

function libvirtdConf(hostUuid: string): string {
  return [
    // libvirt refuses a migration whose two ends report the same host UUID; the host's comes from
    // SMBIOS or /etc/machine-id, which the namespace shares, so this one is set here.
    `host_uuid = "${hostUuid}"`,
    // The socket is root's alone (unix_sock_rw_perms 0700); no polkit in a test namespace.
    'auth_unix_rw = "none"',
    'auth_unix_ro = "none"',
    'log_outputs = "3:file:/var/log/libvirt/libvirtd.log"',
    '',
  ].join('\n')
}

function qemuConf(ports: {from: number; to: number}): string {
  return [
    // As the host's libvirtd runs qemu (Debian's defaults), so either blade's qemu opens the shared images.
    'user = "libvirt-qemu"',
    'group = "libvirt-qemu"',
    'dynamic_ownership = 1',
    'security_driver = "none"',
    // Both daemons share the cgroup tree; a domain's cgroup is named qemu-ID-NAME, and the two
    // count IDs on their own, so this one keeps out of it rather than collide with the host's.
    'cgroup_controllers = [ ]',
    // Both daemons share the network: incoming migrations here listen on ports of their own.
    `migration_port_min = ${ports.from}`,
    `migration_port_max = ${ports.to}`,
    '',
  ].join('\n')
}

export async function startSecondLibvirtd(
  o: {name?: string; migrationPorts?: {from: number; to: number}; hostUuid?: string} = {},
): Promise<SecondLibvirtd> {
  const name = o.name ?? 'blade2'
  const migrationPorts = o.migrationPorts ?? {from: 49400, to: 49463}
  const hostUuid = o.hostUuid ?? randomUUID()
  // Short: the socket path must fit in sun_path (108 bytes).
  const dir = await mkdtemp('/tmp/shien-lvd-')
  const uri = `qemu+unix:///system?socket=${join(dir, 'run', 'libvirt-sock')}`
  const hostUri = `qemu+unix:///system?socket=${join(dir, 'host-run', 'libvirt-sock')}`
  const virsh = (...args: string[]) => execa('virsh', ['-c', uri, ...args], {reject: false})
  const logTail = async (lines = 30) =>
    (await readFile(join(dir, 'log', 'libvirtd.log'), 'utf8').catch(() => '')).split('\n').slice(-lines).join('\n')

  let child: ChildProcess | undefined
  let exited: Promise<unknown> = Promise.resolve()
  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    try {
      await stopDaemons()
    } finally {
      await rm(dir, {recursive: true, force: true})
    }
  }
  const stopDaemons = async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      await destroyAll(virsh)
      await killLeftQemus(join(dir, 'run', 'qemu'))
      const pid = Number((await readFile(join(dir, 'libvirtd.pid'), 'utf8').catch(() => '')).trim())
      // libvirtd's end ends the namespace script, which stops virtlogd.
      if (!(pid > 0 && signal(pid, 'SIGTERM'))) child.kill('SIGTERM')
      const timer = setTimeout(() => child!.kill('SIGKILL'), 20_000)
      await exited
      clearTimeout(timer)
    }
  }

  try {
    for (const folder of [...Object.keys(BINDS), 'host-run']) await mkdir(join(dir, folder))
    await writeFile(join(dir, 'etc', 'libvirtd.conf'), libvirtdConf(hostUuid))
    await writeFile(join(dir, 'etc', 'qemu.conf'), qemuConf(migrationPorts))
    await writeFile(join(dir, 'etc', 'virtlogd.conf'), '')
    const out = openSync(join(dir, 'namespace.log'), 'a')
    child = spawn('unshare', ['--mount', '--uts', '--propagation', 'private', '--', 'sh', '-c', NAMESPACE_SCRIPT, 'sh', dir, name], {
      stdio: ['ignore', out, out],
    })
    exited = new Promise((resolve) => child!.once('exit', resolve))
    closeSync(out)
    await waitForAnswer(virsh, child, async () => {
      const namespaceLog = await readFile(join(dir, 'namespace.log'), 'utf8').catch(() => '')
      return `${namespaceLog}\n${await logTail()}`
    })
    return {name, hostUuid, uri, hostUri, migrationPorts, dir, virsh, logTail, stop}
  } catch (error) {
    await stop()
    throw error
  }
}

/** Waits until the daemon answers on its socket; its logs are in the error when it does not. */
async function waitForAnswer(virsh: SecondLibvirtd['virsh'], child: ChildProcess, logs: () => Promise<string>): Promise<void> {
  for (let i = 0; ; i++) {
    if ((await virsh('version')).exitCode === 0) return
    if (child.exitCode !== null || i > 150) throw new Error(`the second libvirtd did not start:\n${await logs()}`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

async function destroyAll(virsh: SecondLibvirtd['virsh']): Promise<void> {
  const {stdout} = await virsh('list', '--name')
  for (const domain of String(stdout).split('\n').map((l) => l.trim()).filter(Boolean)) await virsh('destroy', domain)
}

/**
 * A qemu that outlived `destroy` would keep the namespace (and the shared image) alive. The
 * folder also holds driver.pid, libvirtd's own: only a pid whose program is qemu is killed.
 */
async function killLeftQemus(pidDir: string): Promise<void> {
  for (const file of await readdir(pidDir).catch(() => [] as string[])) {
    if (!file.endsWith('.pid')) continue
    const pid = Number((await readFile(join(pidDir, file), 'utf8').catch(() => '')).trim())
    const program = pid > 0 ? (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0')[0] : ''
    if (/qemu-system-/.test(program)) process.kill(pid, 'SIGKILL')
  }
}

/** Sends a signal; false when there is no such process any more. */
function signal(pid: number, name: NodeJS.Signals): boolean {
  try {
    process.kill(pid, name)
    return true
  } catch {
    return false
  }
}
