import {isIP} from 'node:net'
import {availableParallelism, totalmem} from 'node:os'

import {z} from 'zod'

import {GUEST_ARCHES} from './blade-arch.js'
import {withoutDefaults} from './config-file.js'

/**
 * The schema of the blade's `/etc/shien/config.json`: every key the file may hold, its type,
 * its default and what it means. A key the schema does not name is an error. To add a key, add
 * one line to the object it belongs in (a top-level key to `bladeConfigSchema`, a push setting
 * to `pushSettingsSchema`), with `.default(...)` and `.describe(...)` (a default computed on the
 * blade takes `.meta({description, computedDefault: 'in words'})` instead, so the docs do not
 * show this machine's value); the types, the checks and docs/config.md follow from here
 * (`npm run docs:config` rewrites the docs' tables; a unit test fails while they differ).
 * What types cannot say (absolute paths, IP addresses, ranges) is checked by
 * privileged/trusted-config.ts and docker/settings.ts.
 */

const count = () => z.number()
const text = () => z.string()
const list = () => z.array(z.string())

/**
 * One heavy step per core (TCG and qemu-img are CPU bound), and no more than a fifth of the
 * blade's memory for them together: the rest is for running VMs (bladeMemoryMiB, 80% by default).
 * HEAVY_STEP_MIB is the memory of one push's heavy steps, from `npm run bench:capacity`
 * (docs/blade-capacity.md): 748 MiB measured for the harden appliance under TCG, rounded up.
 */
export const HEAVY_STEP_MIB = 800
export const DEFAULT_APPLIANCE_MEM_MIB = 512

export function defaultConcurrent(memoryMiB: number, cores: number, stepMiB = HEAVY_STEP_MIB): number {
  return Math.max(1, Math.min(cores, Math.floor((memoryMiB * 0.2) / stepMiB)))
}

export const portPoolSchema = z.strictObject({from: count(), to: count()})

/** Limits that apply to one account; LDAP groups map onto these (see the ie-virsh docs). */
export const limitsSchema = z.strictObject({
  vms: count().default(4).describe('How many VM slots (01..NN) an account may use (at most 99).'),
  vcpus: count().default(2).describe('Virtual CPUs of each VM.'),
  memoryMiB: count().default(2048).describe('Memory of each VM, in MiB.'),
  debug: z.boolean().default(false).describe('Whether the account may use `ie-virsh debug` (a gdb stub).'),
  templates: list().default([]).describe('Domain templates the account may pick with `define --template`; the default template is always allowed.'),
})

/** Where accounts, groups and roles come from (posixAccount / posixGroup). */
export const ldapSchema = z.strictObject({
  url: text().describe('`ldap://HOST:PORT` or `ldaps://HOST:PORT`.'),
  bindDn: text().optional().describe('DN to bind as; anonymous when absent.'),
  bindPasswordFile: text().optional().describe('A file readable by root only that holds the bind password (never put it in this file).'),
  userBase: text().describe('Where accounts are searched.'),
  groupBase: text().describe('Where groups are searched.'),
  userFilter: text().default('(objectClass=posixAccount)').describe('Filter for accounts.'),
  groupFilter: text().default('(objectClass=posixGroup)').describe('Filter for groups.'),
  instructorGroups: list().default([]).describe('Groups whose members are instructors.'),
  studentGroups: list().default([]).describe('Groups whose members are students; empty means every account found in userBase.'),
  timeoutMs: count().default(5000).describe('LDAP request timeout, in ms.'),
})

/** How the blade runs the heavy steps of pushes (convert, delta apply, harden); docs/blade-capacity.md. */
export const pushSettingsSchema = z.strictObject({
  concurrent: count().default(() => defaultConcurrent(Math.floor(totalmem() / 1024 ** 2), availableParallelism()))
    .meta({description: 'Heavy steps running at once on this blade.', computedDefault: 'one per core, all within a fifth of the memory'}),
  applianceMemMiB: count().default(DEFAULT_APPLIANCE_MEM_MIB).describe('Memory of the harden step\'s libguestfs appliance, in MiB (at least 256).'),
  convertCache: z.enum(['none', 'writeback']).default('none')
    .describe('qemu-img\'s host cache for the converted image: `none` (O_DIRECT) keeps a convert\'s dirty pages out of the blade\'s memory; `writeback` is faster on storage without O_DIRECT.'),
  maxHoldMinutes: count().default(60).describe('The longest a push may hold its place in the queue, in minutes.'),
  reserveGiB: count().optional().meta({description: 'Space an upload must leave free on the storage, in GiB.', computedDefault: '5% of the storage, at most 20 GiB'}),
  appliance: text().optional().describe('A fixed libguestfs appliance folder (`libguestfs-make-fixed-appliance DIR`, root\'s) every harden boots.'),
  keepIncomingDays: count().default(7).describe('Days an upload may wait in a student\'s `incoming/`: older ones are removed by that student\'s next push, and by `shien admin clean-incoming` for everyone.'),
})

const containerLimitsShape = {
  containers: count().optional().describe('How many containers (running or not) an account may have.'),
  memoryMiB: count().optional().describe('The memory cap of each container, in MiB.'),
  cpus: count().optional().describe('The CPU share of each container.'),
  portsPerContainer: count().optional().describe('Host ports one container may hold.'),
  portsPerAccount: count().optional().describe('Host ports all of an account\'s containers may hold together.'),
  images: count().optional().describe('How many images an account may have.'),
  imageStorageMiB: count().optional().describe('What an account\'s images may take together, in MiB.'),
}

/** ie-docker's section; absent fields take the defaults of src/docker/settings.ts (docs/ie-docker.md). */
export const dockerSectionSchema = z.strictObject({
  engine: z.enum(['docker', 'podman']).optional().describe('The container engine (default podman).'),
  enginePath: text().optional().describe('Absolute path of the engine\'s CLI (default /usr/bin/ENGINE).'),
  engineArgs: list().optional().describe('Put before every engine subcommand (e.g. `--runtime runc`).'),
  runArgs: list().optional().describe('Added to every `run` (e.g. `--ulimit nofile=1024:1024`).'),
  buildArgs: list().optional().describe('Added to every `build`.'),
  buildContextMiB: count().optional().describe('The most a build context may hold, in MiB (default 512).'),
  buildTimeoutMinutes: count().optional().describe('A build that runs longer is stopped, in minutes (default 30).'),
  portPool: portPoolSchema.optional().describe('Host ports published for containers (default 24000 to 24999).'),
  listenAddress: text().optional().describe('The address published ports listen on (default 127.0.0.1).'),
  images: list().optional().describe('Images every account may run.'),
  proxy: z.strictObject({
    domain: text().optional().describe('`ACCOUNT-NAME.DOMAIN` reaches a container\'s first published port.'),
    includeFile: text().optional().describe('The nginx include file ie-docker rewrites.'),
    reload: list().optional().describe('Run after the include file changes (an argv); none when empty.'),
  }).optional(),
  limits: z.strictObject({
    default: z.strictObject(containerLimitsShape).optional(),
    groups: z.record(z.string(), z.strictObject(containerLimitsShape)).optional(),
  }).optional(),
})

/** `shien audit`'s section; absent fields take the defaults of src/audit/config.ts (docs/audit.md). */
export const auditSectionSchema = z.strictObject({
  concurrency: count().optional().describe('Images audited at once (each is an appliance).'),
  imageTimeoutMs: count().optional().describe('Longest one image may take, in ms.'),
  weakPasswords: list().optional().describe('Passwords tried besides the built-in ones.'),
  weakPasswordsFile: text().optional().describe('A root-readable file with more of them, one a line.'),
  boxes: z.strictObject({max: count().optional(), perLaunch: count().optional()}).optional()
    .describe('Published boxes read for host key comparison: the newest `max`, `perLaunch` per appliance.'),
  live: z.strictObject({
    users: list().optional().describe('Guest accounts to try logging in as.'),
    ports: z.array(count()).optional().describe('TCP ports to look at on every running domain.'),
    allowedPorts: z.array(count()).optional().describe('Open ports that are expected (SSH).'),
    concurrency: count().optional().describe('Domains probed at once.'),
    maxPasswordAttempts: count().optional().describe('Password candidates tried per account over SSH.'),
    domainTimeoutMs: count().optional().describe('Everything one domain may take, in ms.'),
    connectTimeoutMs: count().optional().describe('Connection timeout, in ms.'),
    portGraceMs: count().optional().describe('How long a forwarded port may stay silent before it counts as open, in ms.'),
  }).optional(),
})

/** A blade's name in the cluster: a host name's first label (`blade1`), as messages and `--blade` give it. */
export const BLADE_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/

/** `HOST`, `HOST:PORT`, `[IPV6]` or `[IPV6]:PORT`: where the laptop and the other blades reach a blade's sshd. */
export const SSH_ADDRESS = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?$/

/** The libvirt transports one blade's libvirtd may reach another's by, for live migration. */
export const MIGRATION_SCHEMES = ['qemu+ssh:', 'qemu+tls:', 'qemu+unix:'] as const

function migrationUriProblem(uri: string): string | undefined {
  let url: URL
  try {
    url = new URL(uri)
  } catch {
    return 'not a URI'
  }
  if (!(MIGRATION_SCHEMES as readonly string[]).includes(url.protocol)) return `a ${url.protocol}// URI`
  if (url.pathname !== '/system') return `a URI of libvirt's ${url.pathname || '(no)'} instance`
  return undefined
}

function sshAddressOk(address: string): boolean {
  const m = SSH_ADDRESS.exec(address)
  if (m === null) return false
  const host = address.startsWith('[') ? address.slice(1, address.indexOf(']')) : undefined
  if (host !== undefined && isIP(host) !== 6) return false
  return m[1] === undefined || (Number(m[1]) >= 1 && Number(m[1]) <= 65_535)
}

/** One blade of the cluster, as every blade's config lists it (docs/cluster.md). */
export const clusterBladeSchema = z.strictObject({
  name: text().regex(BLADE_NAME, 'expected a blade name: lowercase letters, digits and "-" (a host name\'s first label)')
    .describe('The blade\'s name, as `--blade` and messages give it.'),
  ssh: text().refine(sshAddressOk, 'expected HOST, HOST:PORT or [IPV6]:PORT')
    .describe('Where the laptop and the other blades reach its sshd: `HOST[:PORT]`.'),
  migrationUri: text().refine((uri) => migrationUriProblem(uri) === undefined, {
    error: (issue) => `expected a qemu+ssh://, qemu+tls:// or qemu+unix:// URI of the system instance (e.g. qemu+ssh://root@blade2/system), got ${migrationUriProblem(String(issue.input))} ${JSON.stringify(issue.input)}`,
  }).describe('The libvirt URI the other blades migrate VMs to it by: `qemu+ssh://root@HOST/system`, `qemu+tls://HOST/system` or `qemu+unix:///system?socket=PATH`.'),
  native: z.array(z.enum(GUEST_ARCHES)).min(1, 'expected at least one architecture').describe('The guest architectures it runs under KVM; placement puts a VM only on a blade that runs its architecture natively.'),
  listenAddress: text().refine((address) => isIP(address) !== 0, 'expected an IP address').optional()
    .describe('The address its SSH forwards listen on, where it differs from the top-level `listenAddress`.'),
  migrationAddress: text().refine((address) => isIP(address) !== 0, 'expected an IP address').optional()
    .describe('The address the other blades\' qemu sends a migrating VM\'s memory to (`--migrateuri tcp://ADDRESS`), where its host name does not resolve to that address on the others; absent, libvirt uses the host name.'),
  keepFreeMiB: count().int().nonnegative().default(0).describe('Memory placement leaves free on it, beyond what its running VMs use, in MiB.'),
  maxVms: count().int().positive().optional().describe('The most VMs placement starts on it; no bound when absent.'),
})

/** The blades that share the storage; absent, this blade is the only one (docs/cluster.md). */
export const clusterSchema = z.strictObject({
  blades: z.array(clusterBladeSchema).min(1, 'expected at least one blade').describe('Every blade sharing the storage, the same list on each.'),
  self: text().optional().describe('Which entry of `blades` this blade is; absent, the entry named as this machine\'s host name (its first label), so every blade can have the same file.'),
  unsafeMigration: z.boolean().default(false).describe('Pass `--unsafe` to `virsh migrate`: only for storage libvirt does not know as shared (GFS2 and OCFS2 it knows; a test folder on ext4 it does not).'),
}).superRefine((cluster, ctx) => {
  const seen = new Map<string, number>()
  for (const [i, blade] of cluster.blades.entries()) {
    for (const [key, value] of [['name', blade.name], ['ssh', blade.ssh], ['migrationUri', blade.migrationUri]] as const) {
      const first = seen.get(`${key} ${value}`)
      if (first === undefined) seen.set(`${key} ${value}`, i)
      else ctx.addIssue({code: 'custom', path: ['blades', i, key], message: `${JSON.stringify(value)} is also blade ${first}'s ${key}; each blade needs its own`})
    }
  }
  if (cluster.self !== undefined && !cluster.blades.some((b) => b.name === cluster.self)) {
    ctx.addIssue({code: 'custom', path: ['self'], message: `"${cluster.self}" is not the name of any of cluster.blades (${cluster.blades.map((b) => b.name).join(', ')})`})
  }
})

export const bladeConfigSchema = z.strictObject({
  storageRoot: text().default('/gfs2/shien').describe('Root of the shared storage: `users/ACCOUNT/`, `boxes/NAME/VERSION/`.'),
  libvirtUri: text().default('qemu:///system').describe('The libvirt connection ie-virsh uses.'),
  domainType: z.enum(['kvm', 'qemu', 'auto']).default('auto').describe('`kvm` on real blades; `qemu` (TCG) where KVM is not usable; `auto` probes /dev/kvm.'),
  templatesDir: text().default('/etc/shien/templates').describe('Admin templates; override the package\'s `templates/` by file name.'),
  defaultTemplate: text().default('normal').describe('The domain template `define` uses when none is named.'),
  sshPortPool: portPoolSchema.prefault({from: 22000, to: 22999}).describe('Host ports forwarded to guests\' sshd (user-mode network templates).'),
  listenAddress: text().default('127.0.0.1').describe('The address forwarded ports listen on.'),
  debugSocketDir: text().default('/run/shien/debug').describe('Where `ie-virsh debug` puts gdb stubs: a UNIX socket per VM in `DIR/ACCOUNT/`.'),
  runDir: text().default('/run/shien').describe('This blade\'s own runtime folder (root\'s): the lock that keeps starts in turn.'),
  bladeMemoryMiB: count().default(() => Math.floor((totalmem() * 0.8) / 1024 ** 2))
    .meta({description: 'The most memory all running VMs on one blade may have together, in MiB.', computedDefault: '80% of the blade\'s memory'}),
  limits: z.strictObject({
    default: limitsSchema.prefault({}).describe('Every account\'s limits.'),
    groups: z.record(z.string(), withoutDefaults(limitsSchema, {documentDefaults: false})).default({}).describe('Limits by group; an account gets the most generous of its groups\' for each field.'),
  }).prefault({}),
  adminGroup: text().default('shien-admin').describe('Members of this Unix/LDAP group may act on any account with --account.'),
  ldap: ldapSchema.optional().describe('Accounts, groups and roles from LDAP; absent: every account gets the default limits and admins are the Unix group `adminGroup`.'),
  bladeCommand: text().default('shien').describe('The command the laptop runs over SSH for the blade side of a push.'),
  ieVirsh: text().default('/usr/local/bin/ie-virsh').describe('ie-virsh as the sudo rule names it: the heavy steps of a push wait for their place with `sudo -n IEVIRSH admit`.'),
  qemuUser: text().default('libvirt-qemu').describe('The user libvirt runs other qemus as (students\' VMs run as their owners).'),
  qemuStateDir: text().default('/var/lib/libvirt/qemu').describe('libvirt\'s folder of running domains; each VM\'s owner may traverse it.'),
  docker: dockerSectionSchema.optional().describe('ie-docker\'s settings (docs/ie-docker.md).'),
  push: withoutDefaults(pushSettingsSchema, {documentDefaults: true}).optional().describe('The heavy steps of pushes (docs/blade-capacity.md).'),
  audit: auditSectionSchema.optional().describe('`shien audit`\'s settings (docs/audit.md).'),
  arch: z.strictObject({
    native: z.array(z.enum(['x86_64', 'aarch64'])).optional().meta({description: 'Guest architectures run under KVM.', computedDefault: 'the host\'s own, where /dev/kvm works and domainType is not qemu'}),
    emulated: z.array(z.enum(['x86_64', 'aarch64'])).optional().meta({description: 'Guest architectures run emulated (TCG), many times slower.', computedDefault: 'every other one whose qemu-system emulator is installed'}),
  }).optional().describe('The guest architectures this blade runs; one in neither list is refused before anything is uploaded (docs/box-formats.md).'),
  cluster: clusterSchema.optional().describe('The blades sharing the storage (docs/cluster.md); absent, this blade is the only one.'),
})
