/**
 * Makes a converted image safe to put on the network, in ONE appliance launch. The checks that refuse
 * an image (no Linux root, no such user, no shadow entry, a system file that is not a regular file)
 * run before the first write, so a refused image is left as it was.
 * Guest content is untrusted: files are inspected with lstat and a symlink or hard link is never
 * written through.
 */
import {constants} from 'node:fs'
import {access, mkdtemp, readFile, rm, stat} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join, posix, resolve} from 'node:path'
import {execa} from 'execa'
import {badInput, isShienError, ShienError} from '../errors.js'
import {
  addAuthorizedKey, fingerprint, lockPasswords, parsePasswd, parsePublicKey, removeInsecureKeys,
  SSHD_SETTINGS, withSshdBlock, type PasswdEntry, type PublicKey,
} from './edits.js'
import {GuestfishSession, type GuestStat} from './guestfish.js'

export interface HostKeyInfo {
  file: string
  type: string
  fingerprint: string
}

/** What hardening did; plain JSON (it is stored next to the image and printed by `--json`). */
export interface HardenReport {
  image: string
  distro: string
  user: string
  /** authorized_keys files that held insecure keys, and how many lines were removed. */
  insecureKeysRemoved: {file: string; count: number}[]
  /** Symlinked or hard-linked .ssh / authorized_keys entries, removed without following them. */
  unsafeLinksRemoved: string[]
  keyInstalled: {file: string; added: boolean}
  /** Accounts whose password field is now `*` (no password can match; key login still works). */
  accountsLocked: string[]
  hostKeys: {old: HostKeyInfo[]; new: HostKeyInfo[]}
  machineId: {emptied: boolean; dbusRemoved: boolean}
  sshd: {file: string; settings: string[]; changed: boolean}
  /** True when an SELinux guest was told to relabel at boot (new files have no label yet). */
  selinuxRelabel: boolean
  durationMs: number
  applianceLaunches: number
}

export interface HardenOptions {
  /** One authorized_keys line: the student's own public key. */
  publicKey: string
  /** Account that receives the key and loses its password; default `vagrant`. */
  user?: string
  signal?: AbortSignal
}

const USER_NAME = /^[a-z_][a-z0-9_.-]{0,31}$/
const HOST_KEY_TYPES = ['ed25519', 'ecdsa', 'rsa'] as const
const MAX_TEXT_BYTES = 1024 * 1024
const SHADOW = '/etc/shadow'
const SSHD_CONFIG = '/etc/ssh/sshd_config'

const unsafe = (path: string, why: string) =>
  new ShienError(`Refusing to edit ${path} in the image: ${why}.`, {code: 'HARDEN_UNSAFE_FILE', exit: 'badInput'})

export async function hardenImage(imagePath: string, opts: HardenOptions): Promise<HardenReport> {
  const started = performance.now()
  const user = opts.user ?? 'vagrant'
  if (!USER_NAME.test(user)) throw badInput('HARDEN_BAD_USER', `Not a valid account name: ${JSON.stringify(user)}.`)
  const key = parsePublicKey(opts.publicKey)
  const image = resolve(imagePath)
  await checkImage(image)
  const g = await GuestfishSession.start({signal: opts.signal})
  // Key generation (about a second for RSA) overlaps the appliance boot; it is awaited later, so
  // mark it handled now or an early failure would be an unhandled rejection.
  const hostKeys = generateHostKeys(opts.signal)
  hostKeys.catch(() => undefined)
  try {
    await g.addDrive(image, {format: 'qcow2', readonly: false})
    await g.launch()
    const mount = await g.mountLinuxRoot({readonly: false})
    if (!mount.mounted) {
      throw badInput('HARDEN_NO_OS', `No Linux root filesystem in ${image}: ${mount.reason}. The image was not changed.`, [
        'Check that the box is a Linux VM and that the conversion to qcow2 succeeded',
      ])
    }
    const done = await hardenMounted(g, user, key, hostKeys)
    await g.close()
    const durationMs = Math.round(performance.now() - started)
    return {image, distro: mount.distro, user, ...done, durationMs, applianceLaunches: g.launches}
  } catch (error) {
    await g.kill()
    throw wrapError(error, image, opts.signal)
  } finally {
    await hostKeys.then((k) => rm(k.dir, {recursive: true, force: true}), () => undefined)
  }
}

type MountedReport = Omit<HardenReport, 'image' | 'distro' | 'user' | 'durationMs' | 'applianceLaunches'>

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

interface TextFile {
  stat: GuestStat
  content: string
}

interface GuestState {
  account: PasswdEntry
  /** Real paths (resolved inside the guest) of every account's home, root's included. */
  homes: string[]
  targetHome: string
  shadow: TextFile
  /** shadow with the passwords replaced, computed up front so a missing entry refuses the image. */
  lockedShadow: {content: string; locked: string[]}
  sshdConfig: TextFile
  hostKeyNames: string[]
}

/** Every read and check that may refuse the image, before anything is written. */
async function readGuest(g: GuestfishSession, user: string): Promise<GuestState> {
  const passwd = parsePasswd((await readRegular(g, '/etc/passwd')).content)
  const account = passwd.find((entry) => entry.name === user)
  if (!account) throw badInput('HARDEN_NO_USER', `The image has no account named ${user} in /etc/passwd.`)
  const homes = new Set<string>()
  for (const home of new Set(['/root', ...passwd.map((entry) => entry.home)])) {
    if (home.startsWith('/') && (await g.bool('is-dir', home, 'followsymlinks:true'))) homes.add((await g.call('realpath', home)).trim())
  }
  if (!(await g.bool('is-dir', account.home, 'followsymlinks:true'))) {
    throw badInput('HARDEN_NO_HOME', `The home directory of ${user} (${account.home}) is missing in the image.`)
  }
  const targetHome = (await g.call('realpath', account.home)).trim()
  const shadow = await readRegular(g, SHADOW)
  const lockedShadow = lockPasswords(shadow.content, [...new Set([user, 'root'])])
  if (lockedShadow.missing.length > 0) {
    throw unsafe(SHADOW, `it has no entry for ${lockedShadow.missing.join(', ')}, so the password cannot be locked`)
  }
  const sshdConfig = await readRegular(g, SSHD_CONFIG)
  const hostKeyNames = (await g.lines('ls', '/etc/ssh')).filter((name) => /^ssh_host_[A-Za-z0-9_.-]+$/.test(name))
  return {account, homes: [...homes], targetHome, shadow, lockedShadow, sshdConfig, hostKeyNames}
}

const MISSING_HINTS: Record<string, string> = {
  [SSHD_CONFIG]: 'Use a box with openssh-server installed (Vagrant needs it too)',
}

async function readRegular(g: GuestfishSession, path: string): Promise<TextFile> {
  const st = await g.stat(path)
  if (!st) throw badInput('HARDEN_MISSING_FILE', `${path} is missing in the image.`, [MISSING_HINTS[path] ?? 'Check that the box is a complete Linux system'])
  if (st.kind !== 'file') throw unsafe(path, `it is a ${st.kind}, not a regular file`)
  if (st.size > MAX_TEXT_BYTES) throw unsafe(path, `it is ${st.size} bytes`)
  return {stat: st, content: (await g.readFile(path)).toString('latin1')}
}

/** Writes a file keeping mode, owner and labels; a hard link is broken first so its twin is not edited. */
async function rewrite(g: GuestfishSession, path: string, st: GuestStat, content: string): Promise<void> {
  if (st.nlink > 1) await g.call('rm', path)
  await g.writeFile(path, Buffer.from(content, 'latin1'))
  if (st.nlink > 1) await setOwnerMode(g, path, st.uid, st.gid, st.mode)
}

async function setOwnerMode(g: GuestfishSession, path: string, uid: number, gid: number, mode: number): Promise<void> {
  await g.call('chown', String(uid), String(gid), path)
  await g.call('chmod', `0${mode.toString(8)}`, path)
}

type KeysReport = Pick<HardenReport, 'insecureKeysRemoved' | 'unsafeLinksRemoved' | 'keyInstalled'>

/**
 * Cleans every account's authorized_keys(2) and installs the student's key. A symlinked or
 * hard-linked .ssh or key file is removed unread: sshd would follow it to a file harden does not
 * own (`authorized_keys -> /etc/shadow` would otherwise be rewritten, or copied to the user).
 */
async function installStudentKey(g: GuestfishSession, guest: GuestState, key: PublicKey): Promise<KeysReport> {
  const report: KeysReport = {insecureKeysRemoved: [], unsafeLinksRemoved: [], keyInstalled: {file: '', added: false}}
  const isLink = (st: GuestStat) => st.kind === 'symlink' || (st.kind === 'file' && st.nlink > 1)
  for (const home of guest.homes) {
    const sshDir = posix.join(home, '.ssh')
    const dirStat = await g.stat(sshDir)
    if (dirStat && isLink(dirStat)) {
      await g.call('rm', sshDir)
      report.unsafeLinksRemoved.push(sshDir)
    }
    if (dirStat?.kind !== 'dir') continue
    for (const name of ['authorized_keys', 'authorized_keys2']) {
      const file = posix.join(sshDir, name)
      const st = await g.stat(file)
      if (st && isLink(st)) {
        await g.call('rm', file)
        report.unsafeLinksRemoved.push(file)
      } else if (st?.kind === 'file') {
        await cleanKeyFile(g, file, st, report)
      }
    }
  }
  report.keyInstalled = await addKeyForUser(g, guest, key)
  return report
}

async function cleanKeyFile(g: GuestfishSession, file: string, st: GuestStat, report: KeysReport): Promise<void> {
  if (st.size > MAX_TEXT_BYTES) throw unsafe(file, `it is ${st.size} bytes`)
  const cleaned = removeInsecureKeys((await g.readFile(file)).toString('latin1'))
  if (cleaned.removed === 0) return
  await g.writeFile(file, Buffer.from(cleaned.content, 'latin1'))
  report.insecureKeysRemoved.push({file, count: cleaned.removed})
}

/** ~/.ssh 0700 and ~/.ssh/authorized_keys 0600, owned by the account, with the key once. */
async function addKeyForUser(g: GuestfishSession, guest: GuestState, key: PublicKey): Promise<{file: string; added: boolean}> {
  const {uid, gid} = guest.account
  const sshDir = posix.join(guest.targetHome, '.ssh')
  const dirStat = await g.stat(sshDir)
  if (dirStat && dirStat.kind !== 'dir') await g.call('rm-rf', sshDir)
  if (dirStat?.kind !== 'dir') await g.call('mkdir', sshDir)
  await setOwnerMode(g, sshDir, uid, gid, 0o700)
  const file = posix.join(sshDir, 'authorized_keys')
  const st = await g.stat(file)
  if (st && st.kind !== 'file') await g.call('rm-rf', file)
  const current = st?.kind === 'file' ? (await g.readFile(file)).toString('latin1') : ''
  const next = addAuthorizedKey(current, {...key, line: Buffer.from(key.line, 'utf8').toString('latin1')})
  if (next.added || st?.kind !== 'file') await g.writeFile(file, Buffer.from(next.content, 'latin1'))
  await setOwnerMode(g, file, uid, gid, 0o600)
  return {file, added: next.added}
}

async function lockAccounts(g: GuestfishSession, guest: GuestState): Promise<string[]> {
  await rewrite(g, SHADOW, guest.shadow.stat, guest.lockedShadow.content)
  return guest.lockedShadow.locked
}

interface GeneratedKeys {
  dir: string
  keys: {name: string; local: string; info: HostKeyInfo}[]
}

/** New host keys, made on the host in a private directory (mkdtemp is 0700) while the appliance boots. */
async function generateHostKeys(signal?: AbortSignal): Promise<GeneratedKeys> {
  const dir = await mkdtemp(join(tmpdir(), 'shien-hostkeys-'))
  const keys = await Promise.all(HOST_KEY_TYPES.map(async (type) => {
    const name = `ssh_host_${type}_key`
    const local = join(dir, name)
    // An empty comment: the default would write the student's account and blade name into the guest.
    await execa('ssh-keygen', ['-q', '-N', '', '-C', '', '-t', type, '-f', local], {cancelSignal: signal})
    const info = fingerprint(await readFile(`${local}.pub`, 'utf8'))
    if (!info) throw new Error(`ssh-keygen wrote an unreadable ${name}.pub`)
    return {name, local, info: {file: `/etc/ssh/${name}.pub`, ...info}}
  }))
  return {dir, keys}
}

async function replaceHostKeys(g: GuestfishSession, oldNames: string[], generated: GeneratedKeys): Promise<HardenReport['hostKeys']> {
  const old: HostKeyInfo[] = []
  for (const name of oldNames.filter((n) => n.endsWith('.pub'))) {
    const path = `/etc/ssh/${name}`
    const st = await g.stat(path)
    const info = st?.kind === 'file' && st.size < MAX_TEXT_BYTES ? fingerprint((await g.readFile(path)).toString('latin1')) : undefined
    if (info) old.push({file: path, ...info})
  }
  for (const name of oldNames) await g.call('rm-rf', `/etc/ssh/${name}`)
  for (const key of generated.keys) {
    // sshd refuses a private host key that group or others can read.
    await g.call('upload', key.local, `/etc/ssh/${key.name}`)
    await setOwnerMode(g, `/etc/ssh/${key.name}`, 0, 0, 0o600)
    await g.call('upload', `${key.local}.pub`, `/etc/ssh/${key.name}.pub`)
    await setOwnerMode(g, `/etc/ssh/${key.name}.pub`, 0, 0, 0o644)
  }
  return {old, new: generated.keys.map((k) => k.info)}
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
