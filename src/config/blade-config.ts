import {readFileSync} from 'node:fs'
import {availableParallelism, totalmem} from 'node:os'

import {ShienError} from '../errors.js'
import type {ArchSettings} from './blade-arch.js'

/** Limits that apply to one account; LDAP groups map onto these (see the ie-virsh docs). */
export interface Limits {
  /** How many VM slots (01..NN) an account may use. */
  vms: number
  vcpus: number
  memoryMiB: number
  debug: boolean
  /** Domain templates the account may pick with `define --template`; the default template is always allowed. */
  templates: string[]
}

/**
 * Where accounts, groups and roles come from (posixAccount / posixGroup). Absent: every account
 * gets the default limits and admins are the Unix group `adminGroup`.
 */
export interface LdapConfig {
  /** ldap://host:port or ldaps://host:port */
  url: string
  /** DN to bind as; anonymous when absent. */
  bindDn?: string
  /** A file readable by root only that holds the bind password (never put it in this file). */
  bindPasswordFile?: string
  userBase: string
  groupBase: string
  userFilter: string
  groupFilter: string
  /** Groups whose members are instructors. */
  instructorGroups: string[]
  /** Groups whose members are students; empty means every account found in userBase. */
  studentGroups: string[]
  timeoutMs: number
}

export interface PortPool {
  from: number
  to: number
}

/** The blade's configuration, `/etc/shien/config.json`. Every field has a default. */
export interface BladeConfig {
  /** Root of the shared storage: users/<account>/, boxes/<name>/<version>/. */
  storageRoot: string
  libvirtUri: string
  /** `kvm` on real blades; `qemu` (TCG) where KVM is not usable; `auto` probes /dev/kvm. */
  domainType: 'kvm' | 'qemu' | 'auto'
  /** Admin templates; overrides the package's `templates/` by file name. */
  templatesDir: string
  defaultTemplate: string
  /** Host ports forwarded to guests' sshd (user-mode network templates). */
  sshPortPool: PortPool
  /** The address forwarded ports listen on. */
  listenAddress: string
  /**
   * Where `ie-virsh debug` puts gdb stubs: a UNIX socket per VM in `<dir>/<account>/`, a folder
   * only its owner can enter (a gdb stub has no authentication). Local to each blade.
   */
  debugSocketDir: string
  /** This blade's own runtime folder (root's): the lock that keeps starts in turn. */
  runDir: string
  /** The most memory all running VMs on one blade may have together; default 80% of the blade's. */
  bladeMemoryMiB: number
  limits: {default: Limits; groups: Record<string, Partial<Limits>>}
  /** Members of this Unix/LDAP group may act on any account with --account. */
  adminGroup: string
  /** Accounts, groups and roles from LDAP; see LdapConfig. */
  ldap?: LdapConfig
  /** The command the laptop runs over SSH for the blade side of a push. */
  bladeCommand: string
  /**
   * ie-virsh as the sudo rule names it (templates/sudoers-shien), absolute: the heavy steps of a
   * push (run as the student) wait for their place in the push queue with `sudo -n <ieVirsh> admit`.
   */
  ieVirsh: string
  /**
   * The user libvirt runs other qemus as. Students' VMs run as their owners instead; `shien
   * admin provision` removes the access older versions gave this user to students' folders.
   */
  qemuUser: string
  /** libvirt's folder of running domains (qemu.conf's state); each VM's owner may traverse it. */
  qemuStateDir: string
  /** ie-docker's settings; absent fields take the defaults in src/docker/settings.ts. */
  docker?: Partial<DockerSettings>
  /** The heavy steps of pushes (convert, delta apply, harden); absent fields take pushSettings' defaults. */
  push?: Partial<PushSettings>
  /**
   * Guest architectures this blade runs natively (KVM) and emulated (TCG), e.g.
   * `{"native": ["x86_64"], "emulated": ["aarch64"]}`; absent lists take archSettings' defaults
   * (blade-arch.ts), derived from `uname -m`, /dev/kvm and the installed qemu-system emulators.
   */
  arch?: Partial<ArchSettings>
}

/** How the blade runs the heavy steps of pushes; see docs/blade-capacity.md for the figures. */
export interface PushSettings {
  /** Heavy steps running at once on this blade; default from memory and cores (defaultConcurrent). */
  concurrent: number
  /** LIBGUESTFS_MEMSIZE of the harden step's appliance, in MiB (libguestfs' own default is 1280). */
  applianceMemMiB: number
  /**
   * qemu-img's host cache for the converted image: `none` (O_DIRECT, the default) keeps a
   * convert's dirty pages out of the blade's memory; `writeback` is faster on storage without
   * O_DIRECT but leaves the whole image in the page cache until the kernel writes it.
   */
  convertCache: 'none' | 'writeback'
  /** The longest a push may hold its place, in minutes; the place is then given up. */
  maxHoldMinutes: number
  /**
   * Space an upload must leave free on the storage, in GiB; by default 5% of the storage's
   * size, at most 20 GiB (storageReserveBytes).
   */
  reserveGiB?: number
  /**
   * A fixed libguestfs appliance (libguestfs-make-fixed-appliance DIR, root's, read-only) that
   * every harden boots; without it each student's libguestfs builds its own on first use.
   */
  appliance?: string
  /**
   * Days an upload may wait in a student's incoming/ (a box, a delta, a part): older ones are
   * removed by that student's next push, and by `shien admin clean-incoming` for everyone.
   */
  keepIncomingDays: number
}

/**
 * The memory of one push's heavy steps, from `npm run bench:capacity` (docs/blade-capacity.md):
 * 748 MiB measured for the harden appliance under TCG (most of it TCG's translation cache; the
 * convert takes 10), rounded up. With KVM the appliance stays within applianceMemMiB plus qemu's own.
 */
export const HEAVY_STEP_MIB = 800
export const DEFAULT_APPLIANCE_MEM_MIB = 512

/**
 * One heavy step per core (TCG and qemu-img are CPU bound), and no more than a fifth of the
 * blade's memory for them together: the rest is for running VMs (bladeMemoryMiB, 80% by default).
 */
export function defaultConcurrent(memoryMiB: number, cores: number, stepMiB = HEAVY_STEP_MIB): number {
  return Math.max(1, Math.min(cores, Math.floor((memoryMiB * 0.2) / stepMiB)))
}

/** The space an upload must leave free on a storage of `sizeBytes` (push.reserveGiB). */
export function storageReserveBytes(settings: Pick<PushSettings, 'reserveGiB'>, sizeBytes: number): number {
  if (settings.reserveGiB !== undefined) return settings.reserveGiB * 2 ** 30
  return Math.min(20 * 2 ** 30, Math.floor(sizeBytes * 0.05))
}

/** The push settings with every default filled in. */
export function pushSettings(config: Pick<BladeConfig, 'push'>): PushSettings {
  return {
    concurrent: defaultConcurrent(Math.floor(totalmem() / 1024 ** 2), availableParallelism()),
    applianceMemMiB: DEFAULT_APPLIANCE_MEM_MIB,
    convertCache: 'none',
    maxHoldMinutes: 60,
    keepIncomingDays: 7,
    ...config.push,
  }
}

/** Container limits of one account (ie-docker); groups map onto these like VM limits. */
export interface ContainerLimits {
  /** How many containers (running or not) an account may have. */
  containers: number
  /** The memory cap of each container (`-m`). */
  memoryMiB: number
  /** The CPU share of each container (`--cpus`). */
  cpus: number
}

/** ie-docker: the engine, its port pool and reverse proxy, and the container limits. */
export interface DockerSettings {
  /** `docker` or `podman` (any docker-compatible CLI). */
  engine: 'docker' | 'podman'
  /** Absolute path of the engine's CLI; default /usr/bin/<engine>. */
  enginePath: string
  /** Put before every engine subcommand (e.g. podman's `--runtime runc`). */
  engineArgs: string[]
  /** Added to every `run` by the admin (e.g. `--ulimit nofile=1024:1024`). */
  runArgs: string[]
  /** Added to every `build` by the admin (e.g. the same `--ulimit`s for its RUN steps). */
  buildArgs: string[]
  /** The most a build context (the folder `build` is given) may hold, in MiB. */
  buildContextMiB: number
  /** A build that runs longer is stopped, in minutes. */
  buildTimeoutMinutes: number
  /** Host ports published for containers' exposed ports. */
  portPool: PortPool
  /** The address published ports listen on. */
  listenAddress: string
  /** Images every account may run (admins pull or import them); accounts' own images come on top. */
  images: string[]
  proxy: {
    /** `<account>-<name>.<domain>` reaches a container's first published port. */
    domain: string
    /** The nginx include file ie-docker rewrites; the admin's nginx loads it. */
    includeFile: string
    /** Run after the include file changes (an argv, e.g. ["nginx", "-s", "reload"]); none when empty. */
    reload: string[]
  }
  limits: {default: ContainerLimits; groups: Record<string, Partial<ContainerLimits>>}
}

export const DEFAULT_LDAP: Omit<LdapConfig, 'url' | 'userBase' | 'groupBase'> = {
  userFilter: '(objectClass=posixAccount)',
  groupFilter: '(objectClass=posixGroup)',
  instructorGroups: [],
  studentGroups: [],
  timeoutMs: 5000,
}

export const DEFAULT_CONFIG_PATH = '/etc/shien/config.json'

export const DEFAULT_BLADE_CONFIG: BladeConfig = {
  storageRoot: '/gfs2/shien',
  libvirtUri: 'qemu:///system',
  domainType: 'auto',
  templatesDir: '/etc/shien/templates',
  defaultTemplate: 'normal',
  sshPortPool: {from: 22000, to: 22999},
  listenAddress: '127.0.0.1',
  debugSocketDir: '/run/shien/debug',
  runDir: '/run/shien',
  bladeMemoryMiB: Math.floor((totalmem() * 0.8) / 1024 ** 2),
  limits: {default: {vms: 4, vcpus: 2, memoryMiB: 2048, debug: false, templates: []}, groups: {}},
  adminGroup: 'shien-admin',
  bladeCommand: 'shien',
  ieVirsh: '/usr/local/bin/ie-virsh',
  qemuUser: 'libvirt-qemu',
  qemuStateDir: '/var/lib/libvirt/qemu',
}

/**
 * Reads the blade configuration. The path is a parameter for tests only: the privileged
 * commands always read the default path, never one taken from the caller's environment.
 */
export function loadBladeConfig(path: string = DEFAULT_CONFIG_PATH): BladeConfig {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return DEFAULT_BLADE_CONFIG
    throw new ShienError(`Cannot read the blade configuration ${path}.`, {
      code: 'CONFIG_UNREADABLE',
      cause: error,
      suggestions: ['Ask an admin to check its permissions (it must be readable by everyone).'],
    })
  }
  let parsed: Partial<BladeConfig>
  try {
    parsed = JSON.parse(text) as Partial<BladeConfig>
  } catch (error) {
    throw new ShienError(`The blade configuration ${path} is not valid JSON.`, {code: 'CONFIG_INVALID', cause: error})
  }
  const d = DEFAULT_BLADE_CONFIG
  return {
    ...d,
    ...parsed,
    limits: {
      default: {...d.limits.default, ...parsed.limits?.default},
      groups: parsed.limits?.groups ?? {},
    },
    ldap: parsed.ldap ? {...DEFAULT_LDAP, ...parsed.ldap} : undefined,
  }
}
