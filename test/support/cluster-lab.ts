import {chmod, mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {existsSync} from 'node:fs'
import {join} from 'node:path'

import {execa} from 'execa'

import {runProvision} from '../../src/admin/provision-command.js'
import {startBladeSshd, type BladeSshd} from './blade-sshd.js'
import {SHIEN_BIN} from './cli.js'
import {startSecondLibvirtd, type SecondLibvirtd} from './second-libvirtd.js'
import {LAB_GROUP, LAB_STUDENTS, makeLabAccounts, makeLaptop, resetLabAccount, type LabBladeName, type LabStudent, type LabStudentName} from './lab-students.js'
import {ensureLibvirtd, LIBVIRT_URI, virsh as hostVirsh} from './system.js'

export {LAB_GROUP, LAB_STUDENTS, type LabBladeName, type LabStudent, type LabStudentName, type SshResult} from './lab-students.js'

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
 * with a blade-side home in the lab (home, /bin/bash and the password field "*" are set at each
 * start; stop gives back /usr/sbin/nologin) and a "laptop" home: .ssh/id_ed25519, .ssh/config
 * with the hosts blade-a and blade-b, and .ssh/known_hosts with both host keys.
 * `student.ssh('blade-b', ...)` runs a command there.
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

export const LAB_SSH_PORTS = {from: 42680, to: 42689}
export const LAB_MIGRATION_PORTS = {from: 49700, to: 49763}
export const HOST_CONFIG = '/etc/shien/config.json'
const HOST_QEMU_STATE = '/var/lib/libvirt/qemu'
/**
 * Each blade's SSH forwards listen on an address of its own, as on separate machines: a VM
 * migrating between the two daemons of this one machine has both qemus holding its port at once.
 */
export const LISTEN: Record<LabBladeName, string> = {'blade-a': '127.0.0.1', 'blade-b': '127.0.0.2'}

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

export interface ClusterLabOptions {
  /**
   * Which `shien` the blades' sessions run for `shien blade ...` (hello, host-keys): the installed
   * one (/usr/local/bin/shien, /opt/shien's), or this repository's build (bin/shien.js), bound over
   * it inside the blades' namespaces only, for tests of a blade step not installed yet. ie-virsh
   * is always the installed one (the sudo rule names it).
   */
  bladeShien?: 'installed' | 'repository'
  /** The lab accounts' memory limit per VM (limits.default.memoryMiB); 128 MiB by default, enough for VMs that never boot an OS. */
  memoryMiB?: number
}

export async function startClusterLab(o: ClusterLabOptions = {}): Promise<ClusterLab> {
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
    for (const folder of [storageRoot, join(dir, 'templates'), join(dir, 'keys'), join(dir, 'homes'), join(dir, 'laptops')]) await mkdir(folder, {mode: 0o755})
    const accounts = await makeLabAccounts(join(dir, 'homes'))
    libvirtd = await startSecondLibvirtd({name: 'blade-b', migrationPorts: LAB_MIGRATION_PORTS})

    let shien: string | undefined
    if (o.bladeShien === 'repository') {
      shien = join(dir, 'bin', 'shien')
      await mkdir(join(dir, 'bin'), {mode: 0o755})
      await writeFile(shien, `#!/bin/sh\nexec /usr/bin/node ${SHIEN_BIN} "$@"\n`, {mode: 0o755})
    }
    const names: LabBladeName[] = ['blade-a', 'blade-b']
    const uris = {'blade-a': LIBVIRT_URI, 'blade-b': libvirtd.uri}
    for (const name of names) {
      await mkdir(join(dir, name, 'etc-shien'), {recursive: true, mode: 0o755})
      sshds.push(await startBladeSshd({dir: join(dir, name), etcShien: join(dir, name, 'etc-shien'), users: [...LAB_STUDENTS], authorizedKeys: join(dir, 'keys'), shien}))
    }
    const cluster = {
      blades: [
        // How the other blade's libvirtd reaches each (--p2p): blade-b sees the host's socket at host-run/.
        // The memory of a migrating VM goes to 127.0.0.1 (blade-b's host name is the host's own).
        {name: 'blade-a', ssh: `127.0.0.1:${sshds[0].port}`, migrationUri: libvirtd.hostUri, migrationAddress: '127.0.0.1', native: ['x86_64'], listenAddress: LISTEN['blade-a']},
        {name: 'blade-b', ssh: `127.0.0.1:${sshds[1].port}`, migrationUri: libvirtd.uri, migrationAddress: '127.0.0.1', native: ['x86_64'], listenAddress: LISTEN['blade-b']},
      ],
      // The storage is a folder on /tmp, which libvirt does not know as shared.
      unsafeMigration: true,
    }
    const blades = {} as Record<LabBladeName, LabBlade>
    for (const [i, name] of names.entries()) {
      const config = {
        storageRoot,
        libvirtUri: uris[name],
        domainType: 'qemu',
        // Stands for blades with KVM: placement puts a VM only where its architecture runs natively.
        arch: {native: ['x86_64']},
        templatesDir: join(dir, 'templates'),
        sshPortPool: LAB_SSH_PORTS,
        listenAddress: LISTEN[name],
        runDir: join(dir, name, 'run'),
        debugSocketDir: join(dir, name, 'run', 'debug'),
        qemuStateDir: name === 'blade-a' ? HOST_QEMU_STATE : join(libvirtd.dir, 'lib', 'qemu'),
        limits: {default: {vms: 4, vcpus: 1, memoryMiB: o.memoryMiB ?? 128}},
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
    // The cluster install lets the students' group through every blade's libvirt state folder,
    // so a VM can migrate to a blade its owner never defined a VM on (README, the cluster install).
    for (const state of [HOST_QEMU_STATE, join(libvirtd.dir, 'lib', 'qemu')]) await execa('setfacl', ['-m', `g:${LAB_GROUP}:--x`, state])
    const students = {} as Record<LabStudentName, LabStudent>
    for (const account of LAB_STUDENTS) {
      students[account] = await makeLaptop({dir, storageRoot, account, id: accounts[account], blades: Object.values(blades)})
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
  // Every step is tried, whatever the one before did: a lab half torn down is worse than a report.
  const step = async (what: string, run: () => Promise<unknown>) => {
    await run().catch((error: Error) => problems.push(`${what}: ${error.message}`))
  }
  for (const sshd of o.sshds) await step('stopping a blade sshd', () => sshd.stop())
  await step("the host's lab domains", () => removeLabDomains(hostVirsh))
  if (o.libvirtd) {
    const libvirtd = o.libvirtd
    // A test that took blade-b down (its daemon stopped, its folder gone) left it nothing to remove.
    if (existsSync(libvirtd.dir)) await step("blade-b's lab domains", () => removeLabDomains(libvirtd.virsh))
    await step('stopping the second libvirtd', () => libvirtd.stop())
  }
  await step('removing the lab folder', () => rm(o.dir, {recursive: true, force: true}))
  await step(`${LAB_GROUP}'s entry on ${HOST_QEMU_STATE}`, () => execa('setfacl', ['-x', `g:${LAB_GROUP}`, HOST_QEMU_STATE]))
  for (const account of LAB_STUDENTS) await step(`resetting ${account}`, () => resetLabAccount(account))

  // What must be gone.
  await step("the host's libvirtd", async () => {
    const onHost = await labDomains(hostVirsh)
    if (onHost.length > 0) throw new Error(`lab domains are still defined: ${onHost.join(', ')}`)
  })
  await step(`${LAB_GROUP}'s entry on ${HOST_QEMU_STATE}`, async () => {
    const acl = await execa('getfacl', ['--omit-header', HOST_QEMU_STATE])
    if (acl.stdout.includes(`group:${LAB_GROUP}:`)) throw new Error(`${HOST_QEMU_STATE} still lets ${LAB_GROUP} through`)
  })
  for (const sshd of o.sshds) {
    const left = await sshd.processes()
    if (left.length > 0) problems.push(`processes of the sshd namespace ${sshd.namespace}: ${left.join(', ')}`)
  }
  for (const path of [o.dir, o.libvirtd?.dir]) if (path && existsSync(path)) problems.push(`${path} is still there`)
  if (!(await readFile(HOST_CONFIG)).equals(o.hostConfig)) problems.push(`${HOST_CONFIG} on the host is not what it was before the lab`)
  if ((await readFile('/proc/self/mountinfo', 'utf8')).includes(o.dir)) problems.push(`mounts of ${o.dir} on the host`)
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

