/**
 * Guests with weaknesses planted for `shien audit`, built with test/support/guest-image.ts.
 * "weak" and "leftovers" share one set of host keys with a published box, so the cross-image
 * checks have something to find. Passwords are hashed by the host's real tools (mkpasswd from
 * Debian's whois for yescrypt, openssl for the others), in every scheme the audit must verify.
 */
import {readFile} from 'node:fs/promises'
import {posix} from 'node:path'
import {execa} from 'execa'

import {VAGRANT_INSECURE_KEYS} from '../../src/harden/insecure-keys.js'
import {makeKeyPair, minimalLinuxRoot, type GuestEntry} from './guest-image.js'

export const ADMIN_WEAK_PASSWORD = 'ie-course-2015'
const [RSA, ED25519] = VAGRANT_INSECURE_KEYS.map((k) => `${k.type} ${k.blob}`)

export async function cryptHash(scheme: 'yescrypt' | 'sha512crypt' | 'sha256crypt' | 'md5crypt', password: string): Promise<string> {
  const r = scheme === 'yescrypt'
    ? await execa('mkpasswd', ['-m', 'yescrypt', '--stdin'], {input: password})
    : await execa('openssl', ['passwd', {sha512crypt: '-6', sha256crypt: '-5', md5crypt: '-1'}[scheme], '-stdin'], {input: password})
  return r.stdout.trim()
}

export interface HostKeys {
  entries: GuestEntry[]
  /** Host paths of the planted public keys (for `ssh-keygen -l`). */
  publicFiles: string[]
}

/** One ed25519 and one RSA host key pair, planted the same way in every guest that shares them. */
export async function hostKeys(): Promise<HostKeys> {
  const pairs = await Promise.all((['ed25519', 'rsa'] as const).map((t) => makeKeyPair(t, 'root@course', `ssh_host_${t}_key`)))
  const entries = await Promise.all(pairs.map(async (p): Promise<GuestEntry[]> => [
    {type: 'file', path: `/etc/ssh/${posix.basename(p.privatePath)}`, mode: 0o600, content: await readFile(p.privatePath)},
    {type: 'file', path: `/etc/ssh/${posix.basename(p.publicPath)}`, content: `${p.publicLine}\n`},
  ]))
  return {entries: entries.flat(), publicFiles: pairs.map((p) => p.publicPath)}
}

const passwd = (lines: string[]) => ({type: 'file' as const, path: '/etc/passwd', content: lines.map((l) => `${l}\n`).join('')})
const home = (user: string, uid: number, mode = 0o755): GuestEntry => ({type: 'dir', path: `/home/${user}`, mode, uid, gid: uid})
const file = (path: string, content: string, mode = 0o644, uid = 0): GuestEntry => ({type: 'file', path, content, mode, uid, gid: uid})

/**
 * Every credential weakness at once: insecure keys for root, vagrant (authorized_keys2), a system
 * account and, through a custom AuthorizedKeysFile, bob; weak passwords in four schemes, an empty
 * one, one from the admin's list and a locked one; NOPASSWD rules (one in a file sudo skips);
 * sshd drop-ins that win over the main file; a world-writable home and key file.
 */
export async function weakGuest(keys: HostKeys): Promise<GuestEntry[]> {
  const strong = 'Tq7#x9!LmZ2@pWv4'
  const [root, vagrant, alice, bob, dave, erin, frank] = await Promise.all([
    cryptHash('yescrypt', 'root'), cryptHash('sha512crypt', 'vagrant'), cryptHash('sha256crypt', 'alice'),
    cryptHash('md5crypt', 'password'), cryptHash('yescrypt', ADMIN_WEAK_PASSWORD), cryptHash('yescrypt', strong), cryptHash('sha512crypt', 'vagrant'),
  ])
  const users = [['vagrant', 1000], ['alice', 1001], ['bob', 1002], ['carol', 1003], ['dave', 1004], ['erin', 1005], ['frank', 1006]] as const
  return [
    ...minimalLinuxRoot(),
    passwd(['root:x:0:0:root:/root:/bin/bash', 'sshd:x:100:65534::/run/sshd:/usr/sbin/nologin', 'svc:x:998:998::/var/lib/svc:/bin/bash',
      ...users.map(([u, id]) => `${u}:x:${id}:${id}::/home/${u}:/bin/bash`)]),
    file('/etc/group', 'root:x:0:\nshadow:x:42:\nops:x:2000:alice\nvagrant:x:1000:\n'),
    file('/etc/shadow', [`root:${root}`, 'sshd:*', 'svc:!', `vagrant:${vagrant}`, `alice:${alice}`, `bob:${bob}`, 'carol:', `dave:${dave}`, `erin:${erin}`, `frank:!${frank}`]
      .map((l) => `${l}:19700:0:99999:7:::\n`).join(''), 0o640),
    ...users.map(([u, id]) => home(u, id, u === 'dave' ? 0o777 : 0o755)),
    {type: 'dir', path: '/root/.ssh', mode: 0o700},
    file('/root/.ssh/authorized_keys', `from="10.0.0.0/8",no-pty ${RSA} vagrant\n`, 0o600),
    file('/home/vagrant/.ssh/authorized_keys2', `${ED25519}\r\n`, 0o600, 1000),
    file('/var/lib/svc/.ssh/authorized_keys', `${ED25519} deploy\n`, 0o600, 998),
    file('/etc/ssh/keys/bob', `${RSA}\n`),
    file('/home/alice/.ssh/authorized_keys', `${(await makeKeyPair('ed25519', 'alice@laptop')).publicLine}\n`, 0o666, 1001),
    file('/etc/sudoers', 'Defaults env_reset\nroot ALL=(ALL:ALL) ALL\n%sudo ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n', 0o440),
    file('/etc/sudoers.d/vagrant', 'vagrant ALL=(ALL) NOPASSWD: ALL\n', 0o440),
    file('/etc/sudoers.d/ops', '# operators\n%ops ALL=(ALL) \\\n  NOPASSWD: ALL\nerin ALL=(ALL) NOPASSWD: /usr/bin/apt\n', 0o440),
    // sudo skips names with a dot: carol (empty password) must not count as passwordless sudo.
    file('/etc/sudoers.d/carol.disabled', 'carol ALL=(ALL) NOPASSWD: ALL\n', 0o440),
    file('/etc/ssh/sshd_config', 'Include /etc/ssh/sshd_config.d/*.conf\nAuthorizedKeysFile .ssh/authorized_keys .ssh/authorized_keys2 /etc/ssh/keys/%u\n'
      + 'PasswordAuthentication no\nPermitRootLogin prohibit-password\nUsePAM no\n'),
    file('/etc/ssh/sshd_config.d/10-root.conf', 'PermitRootLogin=yes\n'),
    file('/etc/ssh/sshd_config.d/50-cloud-init.conf', 'PasswordAuthentication yes # cloud-init\n'),
    file('/etc/ssh/sshd_config.d/60-late.conf', 'PasswordAuthentication no\n'),
    ...keys.entries,
  ]
}

/**
 * Strong passwords and a clean global sshd, but private keys left behind: Vagrant machine keys,
 * and id_* files whose public halves are authorized (one found only through its PEM private key).
 */
export async function leftoversGuest(keys: HostKeys): Promise<GuestEntry[]> {
  const strong = await cryptHash('yescrypt', 'Zr8$kq1!Vn5@uLx0')
  const idEd = await makeKeyPair('ed25519', 'vagrant@vm')
  const idRsa = await makeKeyPair('rsa', 'vagrant@vm')
  await execa('ssh-keygen', ['-q', '-p', '-N', '', '-P', '', '-m', 'PEM', '-f', idRsa.privatePath])
  const idEcdsa = await makeKeyPair('ecdsa', 'vagrant@vm')
  const machineKey = await makeKeyPair('ed25519', 'vagrant')
  return [
    ...minimalLinuxRoot(),
    // Built with its root on LVM (see the test): the audit then mounts it through libguestfs inspection.
    file('/etc/fstab', '/dev/mapper/leftovers-root / ext4 errors=remount-ro 0 1\n'),
    passwd(['root:x:0:0:root:/root:/bin/bash', 'vagrant:x:1000:1000::/home/vagrant:/bin/bash', 'eve:x:1001:1001::/home/eve:/bin/bash']),
    file('/etc/group', 'root:x:0:\nvagrant:x:1000:\neve:x:1001:\n'),
    file('/etc/shadow', `root:*:19700::::::\nvagrant:${strong}:19700::::::\neve:${strong}:19700::::::\n`, 0o640),
    home('vagrant', 1000), home('eve', 1001),
    file('/home/vagrant/.ssh/id_ed25519', await readFile(idEd.privatePath, 'utf8'), 0o600, 1000),
    file('/home/vagrant/.ssh/id_ed25519.pub', `${idEd.publicLine}\n`, 0o644, 1000),
    file('/home/vagrant/.ssh/id_rsa', await readFile(idRsa.privatePath, 'utf8'), 0o600, 1000),
    file('/home/vagrant/.ssh/id_ecdsa', await readFile(idEcdsa.privatePath, 'utf8'), 0o600, 1000),
    file('/home/eve/.ssh/authorized_keys', `${idEd.publicLine}\n`, 0o600, 1001),
    {type: 'dir', path: '/root/.ssh', mode: 0o700},
    file('/root/.ssh/authorized_keys', `${idRsa.publicLine}\n`, 0o600),
    file('/vagrant_private_key', await readFile(machineKey.privatePath, 'utf8'), 0o600),
    file('/home/vagrant/web/.vagrant/machines/default/virtualbox/private_key', await readFile(machineKey.privatePath, 'utf8'), 0o600, 1000),
    file('/etc/sudoers', 'root ALL=(ALL:ALL) ALL\nvagrant ALL=(ALL) NOPASSWD: ALL\n', 0o440),
    file('/etc/ssh/sshd_config', 'PasswordAuthentication no\nPermitRootLogin no\nInclude sshd_config.d/*.conf\nMatch User eve\n  PasswordAuthentication yes\n'),
    file('/etc/ssh/sshd_config.d/50-cloud-init.conf', 'PasswordAuthentication yes\nPermitRootLogin yes\n'),
    ...keys.entries,
  ]
}

/** A published box: a bare root with the shared host keys. */
export function boxGuest(keys: HostKeys): GuestEntry[] {
  return [...minimalLinuxRoot(), file('/etc/ssh/sshd_config', 'PasswordAuthentication no\n'), ...keys.entries]
}
