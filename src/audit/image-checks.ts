/**
 * The offline checks proper: facts read from one guest in, findings out. Pure, so every rule is
 * unit-tested without an appliance. Host keys shared between images are decided later, across
 * all images (host-keys.ts).
 */
import {blobType, decodeBlob, fingerprint, splitLines, tokens} from '../harden/edits.js'
import {VAGRANT_INSECURE_KEYS} from '../harden/insecure-keys.js'
import type {GuestFacts} from './guest-facts.js'
import type {WeakPasswordScan} from './passwords.js'
import {publicBlobOfPrivateKey} from './private-keys.js'
import {passwordLoginPossible} from './sshd-config.js'
import {nopasswdAccounts} from './sudoers.js'
import type {Finding, HostKey} from './types.js'

/** Where findings point: the image and, when its path says so, the account and slot. */
export type ImageRef = Pick<Finding, 'image' | 'account' | 'slot'>

const INSECURE = VAGRANT_INSECURE_KEYS.map((k) => ({type: k.type, blob: Buffer.from(k.blob, 'base64')}))

/** Every key blob on every line of a file, with line numbers (1-based). */
function keyBlobs(text: string): {line: number; blob: Buffer}[] {
  return splitLines(text).flatMap((line, i) =>
    tokens(line).flatMap((t) => {
      const blob = decodeBlob(t)
      return blob && blobType(blob) ? [{line: i + 1, blob}] : []
    }),
  )
}

export function checkImage(ref: ImageRef, facts: GuestFacts, passwords: WeakPasswordScan): Finding[] {
  const insecure = insecureKeyFindings(ref, facts)
  const weak = weakPasswordFindings(ref, facts, passwords)
  return [
    ...insecure, ...weak,
    ...nopasswdFindings(ref, facts, new Set([...insecure, ...weak.filter((f) => f.code === 'weak-password')].map((f) => f.user!))),
    ...sshdFindings(ref, facts), ...privateKeyFindings(ref, facts), ...worldWritableFindings(ref, facts),
  ]
}

function insecureKeyFindings(ref: ImageRef, facts: GuestFacts): Finding[] {
  return facts.authorizedKeys.flatMap((file) =>
    INSECURE.flatMap((key) => {
      const lines = keyBlobs(file.text).filter((k) => k.blob.equals(key.blob)).map((k) => k.line)
      if (lines.length === 0) return []
      return [{
        ...ref, code: 'insecure-key', severity: 'high', user: file.user, file: file.path,
        message: `${file.path} authorizes Vagrant's insecure ${key.type} key: anyone can log in as ${file.user}.`,
        fix: 'Remove the key from the file, or push the VM again with shien push (which removes it).',
        detail: {keyType: key.type, lines},
      } satisfies Finding]
    }),
  )
}

function weakPasswordFindings(ref: ImageRef, facts: GuestFacts, scan: WeakPasswordScan): Finding[] {
  return scan.weak.map((w): Finding => {
    // sshd refuses an empty password unless PermitEmptyPasswords says otherwise (the console does not).
    const emptyOk = w.source !== 'empty' || facts.sshd.settings.permitemptypasswords.value === 'yes'
    const overSsh = !w.locked && emptyOk && passwordLoginPossible(facts.sshd, w.user)
    const what = w.source === 'empty' ? 'empty' : w.source === 'admin-list' ? "on the admin's weak password list" : `"${w.password}"`
    const detail: Finding['detail'] = {scheme: w.scheme, source: w.source, sshPasswordLogin: overSsh}
    if (w.password !== undefined) detail.password = w.password
    if (w.locked) {
      return {
        ...ref, code: 'weak-password-locked', severity: 'low', user: w.user, file: '/etc/shadow', detail,
        message: `${w.user}'s password is locked, but its hash is still of a weak password (${what}, ${w.scheme}); "passwd -u" brings it back.`,
        fix: `Drop the hash: usermod -p '*' ${w.user} (in the VM).`,
      }
    }
    return {
      ...ref, code: 'weak-password', severity: overSsh ? 'high' : 'medium', user: w.user, file: '/etc/shadow', detail,
      message: `${w.user}'s password is ${what} (${w.scheme})${overSsh ? ', and sshd accepts passwords' : ''}.`,
      fix: `Set a strong password or remove it: usermod -p '*' ${w.user} (in the VM); key login keeps working.`,
    }
  })
}

function nopasswdFindings(ref: ImageRef, facts: GuestFacts, exposed: Set<string>): Finding[] {
  const rules = nopasswdAccounts(facts.sudoers, facts.accounts, facts.groups)
  return [...rules].filter(([user]) => exposed.has(user)).map(([user, list]): Finding => ({
    ...ref, code: 'nopasswd-sudo', severity: 'high', user, file: list[0].file,
    message: `${user} runs sudo without a password and has a weak password or Vagrant's insecure key: root for anyone who logs in.`,
    fix: `Fix ${user}'s credentials (see the other findings), or remove NOPASSWD from ${list[0].file}.`,
    detail: {rules: list.map((r) => `${r.file}: ${r.rule}`)},
  }))
}

function sshdFindings(ref: ImageRef, facts: GuestFacts): Finding[] {
  const s = facts.sshd
  if (!s.present) return []
  const where = (file?: string, line?: number) => (file ? `${file}:${line}` : "sshd's default")
  const out: Finding[] = []
  const password = s.settings.passwordauthentication
  const pam = s.settings.kbdinteractiveauthentication.value === 'yes' && s.settings.usepam.value === 'yes'
  if (password.value === 'yes' || pam) {
    const how = password.value === 'yes' ? `PasswordAuthentication yes (${where(password.file, password.line)})` : 'KbdInteractiveAuthentication and UsePAM yes'
    out.push({
      ...ref, code: 'sshd-password-auth', severity: 'medium', file: password.file ?? '/etc/ssh/sshd_config',
      message: `sshd accepts passwords: ${how}.`,
      fix: 'Put "PasswordAuthentication no" and "KbdInteractiveAuthentication no" first in /etc/ssh/sshd_config (sshd keeps the first value it reads).',
      detail: {setting: how},
    })
  }
  const root = s.settings.permitrootlogin
  if (root.value === 'yes') {
    out.push({
      ...ref, code: 'sshd-root-login', severity: 'medium', file: root.file ?? '/etc/ssh/sshd_config',
      message: `sshd lets root log in with a password: PermitRootLogin yes (${where(root.file, root.line)}).`,
      fix: 'Put "PermitRootLogin prohibit-password" first in /etc/ssh/sshd_config.',
      detail: {setting: `PermitRootLogin yes (${where(root.file, root.line)})`},
    })
  }
  for (const c of s.conditional.filter((c) => c.value === 'yes' && ['passwordauthentication', 'permitrootlogin'].includes(c.keyword))) {
    const code = c.keyword === 'permitrootlogin' ? 'sshd-root-login' : 'sshd-password-auth'
    out.push({
      ...ref, code, severity: 'medium', file: c.file,
      message: `sshd turns ${c.keyword === 'permitrootlogin' ? 'PermitRootLogin' : 'PasswordAuthentication'} on for "Match ${c.match}" (${c.file}:${c.line}).`,
      fix: `Remove it from the Match block in ${c.file}.`,
      detail: {setting: `${c.keyword} yes`, match: c.match},
    })
  }
  return out
}

function privateKeyFindings(ref: ImageRef, facts: GuestFacts): Finding[] {
  const authorized = facts.authorizedKeys.flatMap((f) => keyBlobs(f.text).map((k) => ({user: f.user, blob: k.blob})))
  const left = facts.vagrantKeys.map((file): Finding => ({
    ...ref, code: 'private-key-left', severity: 'medium', file,
    message: `A Vagrant machine private key was left in the image: ${file}.`,
    fix: `Delete ${file} in the VM; never package or copy .vagrant/ or vagrant_private_key into a VM.`,
  }))
  for (const key of facts.idKeys) {
    const blob = (key.pub && keyBlobs(key.pub)[0]?.blob) ?? publicBlobOfPrivateKey(key.text)
    const users = [...new Set(authorized.filter((a) => blob && a.blob.equals(blob)).map((a) => a.user))]
    if (users.length === 0) continue
    left.push({
      ...ref, code: 'private-key-left', severity: 'medium', user: key.user, file: key.path,
      message: `${key.path} is the private half of a key authorized for ${users.join(', ')} in the same image.`,
      fix: `Delete ${key.path} in the VM (keep private keys on your laptop) and remove its public key from authorized_keys.`,
      detail: {authorizedFor: users},
    })
  }
  return left
}

function worldWritableFindings(ref: ImageRef, facts: GuestFacts): Finding[] {
  const files = [
    ...facts.authorizedKeys.map((f) => ({user: f.user, path: f.path, mode: f.mode, what: 'authorized keys file'})),
    ...facts.loginDirs.map((d) => ({...d, what: d.path.endsWith('/.ssh') ? '.ssh directory' : 'home directory'})),
  ]
  return files.filter((f) => (f.mode & 0o002) !== 0).map((f): Finding => ({
    ...ref, code: 'world-writable', severity: 'medium', user: f.user, file: f.path,
    message: `${f.user}'s ${f.what} ${f.path} is writable by everyone (mode ${f.mode.toString(8).padStart(4, '0')}): any local user can add a key.`,
    fix: `chmod go-w ${f.path} (in the VM).`,
    detail: {mode: f.mode.toString(8).padStart(4, '0')},
  }))
}

/** The image's SSH host keys by fingerprint; a key without a readable public half is skipped. */
export function hostKeysOf(facts: GuestFacts): HostKey[] {
  return facts.hostKeys.flatMap((k) => {
    const line = k.pub ?? (() => {
      const blob = k.privateText ? publicBlobOfPrivateKey(k.privateText) : undefined
      return blob ? `${blobType(blob)} ${blob.toString('base64')}` : ''
    })()
    const info = fingerprint(line)
    return info ? [{file: k.path, ...info}] : []
  })
}
