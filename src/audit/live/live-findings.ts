/** What the live probes mean, as findings; the probes themselves are in ssh-login.ts and port-probe.ts. */
import type {DomainReport, Finding} from '../types.js'
import type {LoginResult} from './ssh-login.js'

type Ref = Pick<Finding, 'domain' | 'account' | 'slot'>

export function loginFindings(ref: Ref, user: string, keys: LoginResult, passwords: LoginResult | undefined, where: string): Finding[] {
  const out: Finding[] = []
  if (keys.accepted?.kind === 'key') {
    out.push({
      ...ref, code: 'live-insecure-key', severity: 'high', user,
      message: `${user} logs in over SSH (${where}) with Vagrant's insecure ${keys.accepted.keyType} key.`,
      fix: `Remove the key from ${user}'s authorized_keys in the VM, or push the VM again with shien push.`,
      detail: {keyType: keys.accepted.keyType},
    })
  }
  const accepted = passwords?.accepted
  if (accepted?.kind === 'password') {
    const shown = accepted.source === 'admin-list' ? "a password from the admin's weak list" : accepted.password === '' ? 'an empty password' : `the password "${accepted.password}"`
    const detail: Finding['detail'] = {source: accepted.source}
    // The admin's list may hold local passwords: it never appears in a report.
    if (accepted.source !== 'admin-list') detail.password = accepted.password
    out.push({
      ...ref, code: 'live-weak-password', severity: 'high', user, detail,
      message: `${user} logs in over SSH (${where}) with ${shown}.`,
      fix: `Lock or change ${user}'s password in the VM (usermod -p '*' ${user}) and set "PasswordAuthentication no" first in sshd_config.`,
    })
  }
  return out
}

export function passwordAuthFindings(ref: Ref, reached: LoginResult | undefined): Finding[] {
  const methods = reached?.methods ?? []
  const offered = methods.filter((m) => m === 'password' || m === 'keyboard-interactive')
  if (offered.length === 0) return []
  return [{
    ...ref, code: 'live-password-auth', severity: 'medium', detail: {methods},
    message: `sshd offers password login (${offered.join(', ')}).`,
    fix: 'Put "PasswordAuthentication no" and "KbdInteractiveAuthentication no" first in /etc/ssh/sshd_config in the VM.',
  }]
}

export function openPortFindings(ref: Ref, ports: DomainReport['ports'], allowed: number[]): Finding[] {
  return ports.filter((p) => p.state === 'open' && !allowed.includes(p.port)).map((p): Finding => ({
    ...ref, code: 'live-open-port', severity: 'medium', detail: {port: p.port},
    message: `TCP port ${p.port} listens and is reachable from the blade.`,
    fix: `Stop the service or bind it to 127.0.0.1 in the VM, or ask an admin to add ${p.port} to audit.live.allowedPorts.`,
  }))
}
