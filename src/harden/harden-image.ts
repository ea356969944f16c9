/**
 * Makes a converted image safe to put on the network, in ONE appliance launch. The checks that refuse
 * an image (no Linux root, no such user, no shadow entry, a system file that is not a regular file)
 * run before the first write, so a refused image is left as it was.
 * Guest content is untrusted: files are inspected with lstat and a symlink or hard link is never
 * written through.
 */
import {constants} from 'node:fs'
import {access, rm, stat} from 'node:fs/promises'
import {posix, resolve} from 'node:path'
import {badInput, isShienError, ShienError} from '../errors.js'
import {installStudentKey} from './authorized-keys.js'
import {lockPasswords, parsePasswd, parsePublicKey, SSHD_SETTINGS, withSshdBlock, type PublicKey} from './edits.js'
import {MAX_TEXT_BYTES, readRegular, rewrite, setOwnerMode, unsafe} from './guest-files.js'
import {GuestfishSession} from './guestfish.js'
import {generateHostKeys, replaceHostKeys, type GeneratedKeys} from './host-keys.js'
import {mountLinuxRoot} from './mount-root.js'
import {checkArchitecture} from './guest-arch.js'
import type {GuestState, HardenReport} from './report.js'

export type {HostKeyInfo} from './host-keys.js'
export type {GuestState, HardenReport} from './report.js'

export interface HardenOptions {
  /** One authorized_keys line: the student's own public key. */
  publicKey: string
  /** Account that receives the key and loses its password; default `vagrant`. */
  user?: string
  signal?: AbortSignal
  /** Run the appliance without KVM (a blade whose domainType is `qemu`). */
  forceTcg?: boolean
  /** The appliance's memory in MiB (push.applianceMemMiB); libguestfs' default when absent. */
  applianceMemMiB?: number
  /** A fixed appliance's folder shared by every push (push.appliance); libguestfs' own per-user one when absent. */
  appliance?: string
  /**
   * The architecture the box declares (Vagrant's names: amd64, arm64, ...) and where it says so;
   * the guest's init must be built for it, or the image is refused before any write.
   */
  declared?: {architecture: string; source: string}
}

const USER_NAME = /^[a-z_][a-z0-9_.-]{0,31}$/
const SHADOW = '/etc/shadow'
const SSHD_CONFIG = '/etc/ssh/sshd_config'

export async function hardenImage(imagePath: string, opts: HardenOptions): Promise<HardenReport> {
  const started = performance.now()
  const user = opts.user ?? 'vagrant'
  if (!USER_NAME.test(user)) throw badInput('HARDEN_BAD_USER', `Not a valid account name: ${JSON.stringify(user)}.`)
  const key = parsePublicKey(opts.publicKey)
  const image = resolve(imagePath)
  await checkImage(image)
  const g = await GuestfishSession.start({signal: opts.signal, forceTcg: opts.forceTcg, memMiB: opts.applianceMemMiB, appliance: opts.appliance})
  // Key generation (about a second for RSA) overlaps the appliance boot; it is awaited later, so
  // mark it handled now or an early failure would be an unhandled rejection.
  const hostKeys = generateHostKeys(opts.signal)
  hostKeys.catch(() => undefined)
  try {
    await g.addDrive(image, {format: 'qcow2', readonly: false})
    await g.launch()
    const mount = await mountLinuxRoot(g, {readonly: false})
    if (!mount.mounted) {
      throw badInput('HARDEN_NO_OS', `No Linux root filesystem in ${image}: ${mount.reason}. The image was not changed.`, [
        'Check that the box is a Linux VM and that the conversion to qcow2 succeeded',
      ])
    }
    const architecture = await checkArchitecture(g, opts.declared)
    const done = await hardenMounted(g, user, key, hostKeys)
    await g.close()
    const durationMs = Math.round(performance.now() - started)
    return {image, distro: mount.distro, user, architecture, ...done, durationMs, applianceLaunches: g.launches}
  } catch (error) {
    await g.kill()
    throw wrapError(error, image, opts.signal)
  } finally {
    await hostKeys.then((k) => rm(k.dir, {recursive: true, force: true}), () => undefined)
  }
}

type MountedReport = Omit<HardenReport, 'image' | 'distro' | 'user' | 'architecture' | 'durationMs' | 'applianceLaunches'>

/** The hardening proper, on the mounted guest: reads and checks first, then the writes. */
async function hardenMounted(g: GuestfishSession, user: string, key: PublicKey, hostKeys: Promise<GeneratedKeys>): Promise<MountedReport> {
  const guest = await readGuest(g, user)
  const keys = await installStudentKey(g, guest, key)
  const accountsLocked = await lockAccounts(g, guest)
  const hostKeyReport = await replaceHostKeys(g, guest.hostKeyNames, await hostKeys)
  const machineId = await resetMachineId(g)
  const sshd = withSshdBlock(guest.sshdConfig.content)
  if (sshd.changed) await rewrite(g, SSHD_CONFIG, guest.sshdConfig.stat, sshd.content)
  const selinuxRelabel = await requestSelinuxRelabel(g)
  return {
    ...keys, accountsLocked, hostKeys: hostKeyReport, machineId, selinuxRelabel,
    sshd: {file: SSHD_CONFIG, settings: [...SSHD_SETTINGS], changed: sshd.changed},
  }
}

async function checkImage(image: string): Promise<void> {
  try {
    if (!(await stat(image)).isFile()) throw new Error('not a regular file')
    await access(image, constants.R_OK | constants.W_OK)
  } catch (error) {
    throw badInput('HARDEN_NO_IMAGE', `Cannot harden ${image}: ${(error as Error).message}.`, ['Convert the box first (shien blade convert)'])
  }
}

function wrapError(error: unknown, image: string, signal?: AbortSignal): unknown {
  if (signal?.aborted) {
    return new ShienError(`Hardening ${image} was cancelled; the image may be partly hardened: convert it again.`, {code: 'HARDEN_CANCELLED', exit: 'cancelled', cause: error})
  }
  if (isShienError(error)) return error
  return new ShienError(`Hardening ${image} failed: ${(error as Error).message}`, {code: 'HARDEN_FAILED', exit: 'remote', cause: error})
}


/** Every read and check that may refuse the image, before anything is written. */
async function readGuest(g: GuestfishSession, user: string): Promise<GuestState> {
  const passwd = parsePasswd((await readRegular(g, '/etc/passwd')).content)
  const account = passwd.find((entry) => entry.name === user)
  if (!account) throw badInput('HARDEN_NO_USER', `The image has no account named ${user} in /etc/passwd.`)
  const resolved = await resolveHomes(g, ['/root', ...passwd.map((entry) => entry.home)], account.home)
  const targetHome = resolved.get(account.home)
  if (targetHome === undefined) {
    throw badInput('HARDEN_NO_HOME', `The home directory of ${user} (${account.home}) is missing in the image.`)
  }
  const homes = new Set([...resolved.values()].filter((home) => home !== undefined))
  const shadow = await readRegular(g, SHADOW)
  const lockedShadow = lockPasswords(shadow.content, [...new Set([user, 'root'])])
  if (lockedShadow.missing.length > 0) {
    throw unsafe(SHADOW, `it has no entry for ${lockedShadow.missing.join(', ')}, so the password cannot be locked`)
  }
  const sshdConfig = await readRegular(g, SSHD_CONFIG)
  const hostKeyNames = (await g.lines('ls', '/etc/ssh')).filter((name) => /^ssh_host_[A-Za-z0-9_.-]+$/.test(name))
  return {account, homes: [...homes], targetHome, shadow, lockedShadow, sshdConfig, hostKeyNames}
}

/**
 * Real paths (resolved inside the guest) of the homes harden looks into, by passwd home: each
 * directory with something at .ssh (the only place of the key files sshd is told to read), and
 * `target`'s. `realpath` forks a helper in the daemon (10 ms under TCG): only these get one.
 */
async function resolveHomes(g: GuestfishSession, homes: string[], target: string): Promise<Map<string, string | undefined>> {
  const real = async (home: string) => {
    if (!home.startsWith('/') || (await g.statFollowed(home))?.kind !== 'dir') return undefined
    if (home !== target && !(await g.stat(posix.join(home, '.ssh')))) return undefined
    return (await g.call('realpath', home)).trim()
  }
  return new Map(await Promise.all([...new Set(homes)].map(async (home) => [home, await real(home)] as const)))
}

async function lockAccounts(g: GuestfishSession, guest: GuestState): Promise<string[]> {
  await rewrite(g, SHADOW, guest.shadow.stat, guest.lockedShadow.content)
  return guest.lockedShadow.locked
}

/** Empty /etc/machine-id makes systemd create a new id at first boot, so clones do not share one. */
async function resetMachineId(g: GuestfishSession): Promise<HardenReport['machineId']> {
  const path = '/etc/machine-id'
  const st = await g.stat(path)
  if (st?.kind === 'file' && st.nlink === 1) {
    await g.call('truncate', path)
  } else {
    if (st) await g.call('rm-rf', path)
    await g.writeFile(path, '')
    await setOwnerMode(g, path, 0, 0, 0o444)
  }
  // A symlink here (Debian's points at /etc/machine-id) already follows the reset.
  const dbus = await g.stat('/var/lib/dbus/machine-id')
  if (dbus?.kind === 'file') await g.call('rm', '/var/lib/dbus/machine-id')
  return {emptied: true, dbusRemoved: dbus?.kind === 'file'}
}

/** Files harden created carry no SELinux label; an enforcing guest would deny sshd its host keys. */
async function requestSelinuxRelabel(g: GuestfishSession): Promise<boolean> {
  const config = await g.stat('/etc/selinux/config')
  if (config?.kind !== 'file' || config.size > MAX_TEXT_BYTES) return false
  const text = (await g.readFile('/etc/selinux/config')).toString('latin1')
  if (!/^\s*SELINUX\s*=\s*(enforcing|permissive)\b/m.test(text)) return false
  if (!(await g.stat('/.autorelabel'))) await g.call('touch', '/.autorelabel')
  return true
}
