import {describe, expect, it} from 'vitest'

import type {GuestFacts} from '../../../src/audit/guest-facts.js'
import {authorizedKeysPaths} from '../../../src/audit/guest-facts.js'
import {checkImage, hostKeysOf} from '../../../src/audit/image-checks.js'
import {VAGRANT_INSECURE_PRIVATE_KEYS} from '../../../src/audit/live/insecure-private-keys.js'
import type {WeakPasswordScan} from '../../../src/audit/passwords.js'
import {readSshdConfig} from '../../../src/audit/sshd-config.js'
import {VAGRANT_INSECURE_KEYS} from '../../../src/harden/insecure-keys.js'

const [RSA, ED] = VAGRANT_INSECURE_KEYS
const ref = {image: '/s/users/e195701/images/01.qcow2', account: 'e195701', slot: '01'}

async function facts(sshdConfig: string | undefined, more: Partial<GuestFacts> = {}): Promise<GuestFacts> {
  const sshd = await readSshdConfig({read: async (p) => (p === '/etc/ssh/sshd_config' ? sshdConfig : undefined), glob: async () => []})
  return {
    accounts: [{name: 'root', uid: 0, gid: 0, home: '/root'}, {name: 'vagrant', uid: 1000, gid: 1000, home: '/home/vagrant'}],
    groups: [], shadow: [], sudoers: [], sshd, authorizedKeys: [], loginDirs: [], idKeys: [], vagrantKeys: [], hostKeys: [], ...more,
  }
}
const noWeak: WeakPasswordScan = {weak: [], unverified: []}
const codes = (fs: {code: string; severity: string; user?: string}[]) => fs.map((f) => `${f.code}/${f.severity}/${f.user ?? ''}`).sort()

describe('checkImage', () => {
  it('finds nothing in what shien harden leaves behind', async () => {
    const f = await facts('PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nUsePAM yes\n', {
      sudoers: [{path: '/etc/sudoers.d/vagrant', text: 'vagrant ALL=(ALL) NOPASSWD: ALL\n'}],
      authorizedKeys: [{user: 'vagrant', path: '/home/vagrant/.ssh/authorized_keys', text: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHvBv2Fv1b5nq6WJkz1TNHgIRE3L8QvHk8UbBkeYwJ5y me\n', mode: 0o600, uid: 1000}],
      loginDirs: [{user: 'vagrant', path: '/home/vagrant', mode: 0o755}, {user: 'vagrant', path: '/home/vagrant/.ssh', mode: 0o700}],
    })
    expect(checkImage(ref, f, noWeak)).toEqual([])
  })

  it('matches insecure keys by blob, behind options and comments, one finding per key type and file', async () => {
    const text = `# x\nno-pty,command="true" ${RSA.type} ${RSA.blob} other-comment\n${ED.type}  ${ED.blob}\r\nssh-rsa ${RSA.blob}\n`
    const f = await facts(undefined, {authorizedKeys: [{user: 'vagrant', path: '/home/vagrant/.ssh/authorized_keys', text, mode: 0o600, uid: 1000}]})
    const found = checkImage(ref, f, noWeak)
    expect(found.map((x) => [x.code, x.detail])).toEqual([['insecure-key', {keyType: 'ssh-rsa', lines: [2, 4]}], ['insecure-key', {keyType: 'ssh-ed25519', lines: [3]}]])
    expect(found[0]).toMatchObject({...ref, severity: 'high', user: 'vagrant', file: '/home/vagrant/.ssh/authorized_keys'})
  })

  it('rates a weak password by whether sshd takes it, and an empty one only with PermitEmptyPasswords', async () => {
    const scan: WeakPasswordScan = {unverified: [], weak: [
      {user: 'vagrant', source: 'builtin', password: 'vagrant', scheme: 'yescrypt', locked: false},
      {user: 'root', source: 'username', password: 'root', scheme: 'yescrypt', locked: false},
      {user: 'carol', source: 'empty', password: '', scheme: 'none', locked: false},
      {user: 'frank', source: 'admin-list', scheme: 'md5crypt', locked: true},
    ]}
    expect(codes(checkImage(ref, await facts('PasswordAuthentication no\nUsePAM no\n'), scan)))
      .toEqual(['weak-password-locked/low/frank', 'weak-password/medium/carol', 'weak-password/medium/root', 'weak-password/medium/vagrant'])
    expect(codes(checkImage(ref, await facts('PermitRootLogin yes\nPermitEmptyPasswords yes\n'), scan)))
      .toEqual(['sshd-password-auth/medium/', 'sshd-root-login/medium/', 'weak-password-locked/low/frank', 'weak-password/high/carol', 'weak-password/high/root', 'weak-password/high/vagrant'])
    const locked = checkImage(ref, await facts('PasswordAuthentication no\n'), scan).find((x) => x.user === 'frank')!
    expect(locked.detail).toEqual({scheme: 'md5crypt', source: 'admin-list', sshPasswordLogin: false})
  })

  it('reports passwordless sudo only for accounts that also have a weak credential', async () => {
    const sudoers = [{path: '/etc/sudoers', text: 'vagrant ALL=(ALL) NOPASSWD: ALL\nroot ALL=(ALL) NOPASSWD: ALL\n'}]
    const weak: WeakPasswordScan = {unverified: [], weak: [{user: 'vagrant', source: 'builtin', password: 'vagrant', scheme: 'yescrypt', locked: false}]}
    const found = checkImage(ref, await facts('PasswordAuthentication no\n', {sudoers}), weak).filter((x) => x.code === 'nopasswd-sudo')
    expect(found.map((x) => [x.user, x.detail])).toEqual([['vagrant', {rules: ['/etc/sudoers: vagrant ALL=(ALL) NOPASSWD: ALL']}]])
  })

  it('reports private keys whose public half is authorized, and world-writable homes and key files', async () => {
    const f = await facts(undefined, {
      authorizedKeys: [{user: 'root', path: '/root/.ssh/authorized_keys', text: `${ED.type} ${ED.blob}\n`, mode: 0o646, uid: 0}],
      idKeys: [
        {user: 'vagrant', path: '/home/vagrant/.ssh/id_ed25519', text: VAGRANT_INSECURE_PRIVATE_KEYS[1].pem, mode: 0o600, uid: 1000},
        {user: 'vagrant', path: '/home/vagrant/.ssh/id_rsa', text: VAGRANT_INSECURE_PRIVATE_KEYS[0].pem, mode: 0o600, uid: 1000},
      ],
      vagrantKeys: ['/vagrant_private_key'],
      loginDirs: [{user: 'vagrant', path: '/home/vagrant', mode: 0o1777}],
    })
    const found = checkImage(ref, f, noWeak).filter((x) => x.code !== 'insecure-key')
    expect(found.map((x) => [x.code, x.file, x.detail])).toEqual([
      ['private-key-left', '/vagrant_private_key', undefined],
      ['private-key-left', '/home/vagrant/.ssh/id_ed25519', {authorizedFor: ['root']}],
      ['world-writable', '/root/.ssh/authorized_keys', {mode: '0646'}],
      ['world-writable', '/home/vagrant', {mode: '1777'}],
    ])
  })
})

describe('hostKeysOf and authorizedKeysPaths', () => {
  // The expected fingerprints are what `ssh-keygen -l` prints for Vagrant's insecure keys.
  it('fingerprints host keys from the .pub, or from the private key when the .pub is missing', async () => {
    const f = await facts(undefined, {hostKeys: [
      {path: '/etc/ssh/ssh_host_ed25519_key', pub: `${ED.type} ${ED.blob} root@box\n`},
      {path: '/etc/ssh/ssh_host_rsa_key', privateText: VAGRANT_INSECURE_PRIVATE_KEYS[0].pem},
      {path: '/etc/ssh/ssh_host_bad_key', pub: 'garbage\n'},
    ]})
    expect(hostKeysOf(f)).toEqual([
      {file: '/etc/ssh/ssh_host_ed25519_key', type: 'ssh-ed25519', fingerprint: 'SHA256:WkvqjnyPAeC0cbPErYiGP9vqHdgL1MqqvPdIe3lvHgI'},
      {file: '/etc/ssh/ssh_host_rsa_key', type: 'ssh-rsa', fingerprint: 'SHA256:1M4RzhMyWuFS/86uPY/ce2prh/dVTHW7iD2RhpquOZA'},
    ])
  })

  it('expands AuthorizedKeysFile tokens per account', () => {
    const a = {name: 'bob', uid: 1002, gid: 1002, home: '/home/bob'}
    expect(authorizedKeysPaths('.ssh/authorized_keys /etc/ssh/keys/%u %h/.ssh/k_%U %%x', a))
      .toEqual(['/home/bob/.ssh/authorized_keys', '/etc/ssh/keys/bob', '/home/bob/.ssh/k_1002', '/home/bob/%x'])
    expect(authorizedKeysPaths('none', a)).toEqual([])
  })
})
