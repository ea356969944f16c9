import {chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {existsSync} from 'node:fs'
import {join} from 'node:path'

import {execa} from 'execa'

import {runProvision} from '../../src/admin/provision-command.js'
import {startBladeSshd, type BladeSshd} from './blade-sshd.js'
import {startSecondLibvirtd, type SecondLibvirtd} from './second-libvirtd.js'
import {ensureLibvirtd, ensureUser, LIBVIRT_URI, virsh as hostVirsh} from './system.js'

/*
 * The two-blade test lab: two shien blades on this one machine, sharing one storage root, each
 * reached by the lab's students over an sshd of its own and each running the installed
 * /usr/local/bin/ie-virsh, through the real sudo rule (/etc/sudoers.d/shien, group
 * shien-users), against its own libvirtd.
 *
 *   blade-a   the host's libvirtd (qemu:///system)
 *   blade-b   a second libvirtd in mount and UTS namespaces of its own (second-libvirtd.ts),
 *             qemu+unix:///system?socket=<its dir>/run/libvirt-sock
 *
 * Each blade's sshd (blade-sshd.ts) runs in a mount namespace of its own in which the blade's
 * /etc/shien folder (holding only its config.json) is bound over /etc/shien: a session on
 * blade-a or blade-b, and the `sudo ie-virsh` in it, reads that blade's config. The two configs
 * name the same storage root, SSH port pool and `cluster` list (both blades), and differ in
 * `self`, `libvirtUri`, `qemuStateDir` (blade-b's is its daemon's /var/lib/libvirt/qemu as the
 * host sees it) and `runDir`. The host's /etc/shien/config.json is never written; start and
 * stop check it is byte-identical. Only the installed ie-virsh is run: what it does is what
 * /opt/shien holds (scripts/local-blade.sh installs it).
 *
 * Students: shien-cl1 and shien-cl2 (made once and kept, as every test account is; in
 * shien-users for the sudo rule and in shien-cluster-lab, the group the lab provisions), each
 * with a blade-side home in the lab (their passwd home and /bin/bash are set at each start) and
 * a "laptop" home: .ssh/id_ed25519, .ssh/config with the hosts blade-a and blade-b, and
 * .ssh/known_hosts with both host keys. `student.ssh('blade-b', ...)` runs a command there.
 *
 * Storage (<lab>/storage, root's, 0755): made by `shien admin provision` (src/admin/provision.ts)
 * for shien-cluster-lab: users/<account>/{incoming,images}, the student's, 0700, as on a blade.
 *
 * Ports: the SSH port pool is 42680-42689 (ie-virsh's are 42610-42649, the blade abuse tests'
 * 42660-42669, ie-docker's 42700-42799); blade-b's incoming migrations 49700-49763 (the
 * two-libvirtds test's daemons use 49400 to 49663); the sshds take free loopback ports.
 *
 * One lab at a time: the students' homes are the running lab's. Leftovers of a lab that did not
 * stop (domains of the lab's students) are removed at the next start. `stop()` stops the sshds
 * (only the lab's: the processes of their namespaces), destroys and undefines the lab's domains
 * on both daemons, stops the second libvirtd, removes the lab's folders, and throws naming
 * whatever is left.
 */

export const LAB_STUDENTS = ['shien-cl1', 'shien-cl2'] as const
export type LabStudentName = (typeof LAB_STUDENTS)[number]
export const LAB_GROUP = 'shien-cluster-lab'
export const LAB_SSH_PORTS = {from: 42680, to: 42689}
export const LAB_MIGRATION_PORTS = {from: 49700, to: 49763}
export const HOST_CONFIG = '/etc/shien/config.json'
export type LabBladeName = 'blade-a' | 'blade-b'

const LAB_DOMAIN = new RegExp(`^(?:${LAB_STUDENTS.join('|')})-\\d{2}$`)

export interface LabBlade {
  name: LabBladeName
  libvirtUri: string
  /** The blade's config, as its sessions read it at /etc/shien/config.json. */
  configPath: string
  config: Record<string, unknown>
  sshd: BladeSshd
  /** virsh as root on this blade's libvirtd: the ground truth. */
  virsh(...args: string[]): ReturnType<typeof execa>
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

export interface ClusterLab {
  dir: string
  storageRoot: string
  a: LabBlade
  b: LabBlade & {libvirtd: SecondLibvirtd}
  students: Record<LabStudentName, LabStudent>
  /** The lab students' domains (`shien-cl1-01`, ...) defined on each daemon. */
  domains(): Promise<{a: string[]; b: string[]}>
  /** Tears the lab down and checks nothing is left (throws naming it). Safe to call twice. */
  stop(): Promise<void>
}

export async function startClusterLab(): Promise<ClusterLab> {
  await ensureLibvirtd()
  const hostConfig = await readFile(HOST_CONFIG)
  await removeLabDomains(hostVirsh)
  const dir = await mkdtemp('/tmp/shien-cl-')
  await chmod(dir, 0o755)
  let libvirtd: SecondLibvirtd | undefined
  const sshds: BladeSshd[] = []
  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    await teardown({dir, hostConfig, libvirtd, sshds})
  }
  try {
    const storageRoot = join(dir, 'storage')
    for (const folder of [storageRoot, join(dir, 'templates'), join(dir, 'keys'), join(dir, 'homes')]) await mkdir(folder, {mode: 0o755})
    const accounts = await makeStudents(dir)
    libvirtd = await startSecondLibvirtd({name: 'blade-b', migrationPorts: LAB_MIGRATION_PORTS})

    const names: LabBladeName[] = ['blade-a', 'blade-b']
    const uris = {'blade-a': LIBVIRT_URI, 'blade-b': libvirtd.uri}
    for (const name of names) {
      await mkdir(join(dir, name, 'etc-shien'), {recursive: true, mode: 0o755})
      sshds.push(await startBladeSshd({dir: join(dir, name), etcShien: join(dir, name, 'etc-shien'), users: [...LAB_STUDENTS], authorizedKeys: join(dir, 'keys')}))
    }
    const cluster = {
      blades: [
        // How the other blade's libvirtd reaches each (--p2p): blade-b sees the host's socket at host-run/.
        {name: 'blade-a', ssh: `127.0.0.1:${sshds[0].port}`, migrationUri: libvirtd.hostUri, native: ['x86_64']},
        {name: 'blade-b', ssh: `127.0.0.1:${sshds[1].port}`, migrationUri: libvirtd.uri, native: ['x86_64']},
      ],
    }
    const blades = {} as Record<LabBladeName, LabBlade>
    for (const [i, name] of names.entries()) {
      const config = {
        storageRoot,
        libvirtUri: uris[name],
        domainType: 'qemu',
        templatesDir: join(dir, 'templates'),
        sshPortPool: LAB_SSH_PORTS,
        listenAddress: '127.0.0.1',
        runDir: join(dir, name, 'run'),
        debugSocketDir: join(dir, name, 'run', 'debug'),
        qemuStateDir: name === 'blade-a' ? '/var/lib/libvirt/qemu' : join(libvirtd.dir, 'lib', 'qemu'),
        limits: {default: {vms: 4, vcpus: 1, memoryMiB: 128}},
        adminGroup: 'shien-admin',
        qemuUser: 'libvirt-qemu',
        cluster: {...cluster, self: name},
      }
      await mkdir(config.runDir, {mode: 0o755})
      const configPath = join(dir, name, 'etc-shien', 'config.json')
      await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`, {mode: 0o644})
      const uri = uris[name]
      blades[name] = {name, libvirtUri: uri, configPath, config, sshd: sshds[i], virsh: (...args) => execa('virsh', ['-c', uri, ...args], {reject: false})}
    }

    await runProvision({configPath: blades['blade-a'].configPath, groups: [LAB_GROUP], uid: 0, signal: new AbortController().signal})
    const students = {} as Record<LabStudentName, LabStudent>
    for (const account of LAB_STUDENTS) {
      students[account] = await makeLaptop(dir, storageRoot, account, accounts[account], blades)
    }
    await checkBinds(blades, hostConfig)
    return {
      dir,
      storageRoot,
      a: blades['blade-a'],
      b: {...blades['blade-b'], libvirtd},
      students,
      domains: async () => ({a: await labDomains(blades['blade-a'].virsh), b: await labDomains(blades['blade-b'].virsh)}),
      stop,
    }
  } catch (error) {
    await stop().catch((cleanup) => console.error('cluster lab: cleaning up after a failed start:', cleanup))
    throw error
  }
}

/** The lab's accounts: a shell for sshd's sessions, a home of the lab's, the sudo rule's group and the lab's. */
async function makeStudents(dir: string): Promise<Record<LabStudentName, {uid: number; gid: number}>> {
  await execa('groupadd', ['-f', 'shien-admin'])
  const ids = {} as Record<LabStudentName, {uid: number; gid: number}>
  for (const account of LAB_STUDENTS) {
    const uid = await ensureUser(account, ['shien-users', LAB_GROUP])
    const gid = Number((await execa('id', ['-g', account])).stdout)
    const home = join(dir, 'homes', account)
    await mkdir(home, {mode: 0o700})
    await chown(home, uid, gid)
    // sshd with UsePAM no refuses a locked account ("!", as useradd leaves it); "*" is no password, not locked.
    await execa('usermod', ['--shell', '/bin/bash', '--home', home, '--password', '*', account])
    ids[account] = {uid, gid}
  }
  return ids
}

async function makeLaptop(dir: string, storageRoot: string, account: LabStudentName, id: {uid: number; gid: number}, blades: Record<LabBladeName, LabBlade>): Promise<LabStudent> {
  const laptopHome = join(dir, 'laptops', account)
  const dotSsh = join(laptopHome, '.ssh')
  await mkdir(dotSsh, {recursive: true, mode: 0o700})
  const key = join(dotSsh, 'id_ed25519')
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${account}@laptop`, '-f', key])
  await writeFile(join(dir, 'keys', account), await readFile(`${key}.pub`), {mode: 0o644})
  const knownHosts = join(dotSsh, 'known_hosts')
  await writeFile(knownHosts, `${Object.values(blades).map((b) => b.sshd.knownHostsLine).join('\n')}\n`, {mode: 0o644})
  const sshConfig = join(dotSsh, 'config')
  await writeFile(sshConfig, Object.values(blades).map((b) => [
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
  ].join('\n')).join(''), {mode: 0o600})
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

/** Each blade's sessions read its own config; the host still reads its own, unchanged. */
async function checkBinds(blades: Record<LabBladeName, LabBlade>, hostConfig: Buffer): Promise<void> {
  for (const blade of Object.values(blades)) {
    const inside = await blade.sshd.readInside(HOST_CONFIG)
    if (inside !== (await readFile(blade.configPath, 'utf8')).trimEnd()) throw new Error(`${blade.name}'s sessions do not read its config at ${HOST_CONFIG}: ${inside.slice(0, 200)}`)
  }
  if (!(await readFile(HOST_CONFIG)).equals(hostConfig)) throw new Error(`${HOST_CONFIG} on the host changed while the lab started`)
  const mounts = await readFile('/proc/self/mountinfo', 'utf8')
  if (mounts.includes('/etc/shien')) throw new Error(`a blade's bind over /etc/shien is visible outside its namespace:\n${mounts}`)
}

async function teardown(o: {dir: string; hostConfig: Buffer; libvirtd?: SecondLibvirtd; sshds: BladeSshd[]}): Promise<void> {
  const problems: string[] = []
  for (const sshd of o.sshds) await sshd.stop().catch((error: Error) => problems.push(error.message))
  await removeLabDomains(hostVirsh)
  if (o.libvirtd) {
    const virsh = o.libvirtd.virsh
    await removeLabDomains(virsh)
    await o.libvirtd.stop()
  }
  await rm(o.dir, {recursive: true, force: true})
  // The accounts stay (uids must stay stable), as ensureUser leaves them: no shell, no home of the lab's.
  for (const account of LAB_STUDENTS) {
    await execa('usermod', ['--shell', '/usr/sbin/nologin', '--home', `/home/${account}`, account], {reject: false})
  }

  // What must be gone.
  const onHost = await labDomains(hostVirsh)
  if (onHost.length > 0) problems.push(`domains on the host's libvirtd: ${onHost.join(', ')}`)
  for (const sshd of o.sshds) {
    const left = await sshd.processes()
    if (left.length > 0) problems.push(`processes of the sshd namespace ${sshd.namespace}: ${left.join(', ')}`)
  }
  for (const path of [o.dir, o.libvirtd?.dir]) if (path && existsSync(path)) problems.push(`${path} is still there`)
  if (!(await readFile(HOST_CONFIG)).equals(o.hostConfig)) problems.push(`${HOST_CONFIG} on the host is not what it was before the lab`)
  const mounts = await readFile('/proc/self/mountinfo', 'utf8')
  if (mounts.includes(o.dir)) problems.push(`mounts of ${o.dir} on the host`)
  if (problems.length > 0) throw new Error(`the cluster lab left things behind: ${problems.join('; ')}`)
}

async function labDomains(virsh: LabBlade['virsh']): Promise<string[]> {
  const r = await virsh('list', '--all', '--name')
  if (r.exitCode !== 0) throw new Error(`virsh list: ${r.stderr}`)
  return String(r.stdout).split('\n').map((l) => l.trim()).filter((name) => LAB_DOMAIN.test(name))
}

async function removeLabDomains(virsh: LabBlade['virsh']): Promise<void> {
  for (const name of await labDomains(virsh)) {
    await virsh('destroy', name)
    if ((await virsh('undefine', '--nvram', name)).exitCode !== 0) await virsh('undefine', name)
  }
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`
}
