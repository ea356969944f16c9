import type {Duplex} from 'node:stream'

import {runTool} from '../process/run.js'
import {withRelay} from './openssh-relay.js'
import type {SshTarget} from './ssh-target.js'

/**
 * What OpenSSH made of a host's certificate. `certified` only when OpenSSH found the CA that
 * signed it in a `@cert-authority` line for the host and the certificate passed its checks
 * (signature, validity, principals, revocation); `keyFingerprint` is then the certified key's.
 */
export type CertificateVerdict =
  | {certified: true; keyFingerprint: string; caFingerprint: string; id: string; matchedName: string}
  | {certified: false; reason: string; revoked?: boolean; caFingerprint?: string}

/** Asks OpenSSH about the certificate of the host's key of this type (`ssh-ed25519`, ...). */
export type CertificateCheck = (keyType: string) => Promise<CertificateVerdict>

/** The certificate algorithms OpenSSH negotiates for a plain host key type. */
export function certificateAlgorithms(keyType: string): string | undefined {
  if (keyType === 'ssh-ed25519' || keyType.startsWith('ecdsa-sha2-')) return `${keyType}-cert-v01@openssh.com`
  // The SHA-1 ssh-rsa certificate algorithm is off in OpenSSH 8.8 and later.
  if (keyType === 'ssh-rsa') return 'rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com'
  return undefined
}

/**
 * Everything that makes the `ssh` run a check and nothing else: no prompt, no login (only the
 * `none` method, which the server refuses), nothing written (strict checking, no key updates),
 * no shared master connection, the host named and its known_hosts files given as shien read
 * them, and only certificates of the key type ssh2 was shown.
 */
export function checkArgs(target: SshTarget, knownHosts: {user: string[]; global: string[]}, algorithms: string, proxyCommand: string): string[] {
  const files = (paths: string[]) => (paths.length === 0 ? 'none' : paths.map((p) => `"${p.replaceAll('%', '%%')}"`).join(' '))
  const options = [
    'BatchMode=yes',
    'StrictHostKeyChecking=yes',
    'UpdateHostKeys=no',
    'CheckHostIP=no',
    'VerifyHostKeyDNS=no',
    'NoHostAuthenticationForLocalhost=no',
    'PreferredAuthentications=none',
    'ControlMaster=no',
    'ControlPath=none',
    'ClearAllForwardings=yes',
    'ConnectTimeout=10',
    `HostKeyAlgorithms=${algorithms}`,
    `HostName=${target.hostName}`,
    ...(target.hostKeyAlias === undefined ? [] : [`HostKeyAlias=${target.hostKeyAlias}`]),
    `UserKnownHostsFile=${files(knownHosts.user)}`,
    `GlobalKnownHostsFile=${files(knownHosts.global)}`,
    // Given on the command line, it wins over any ProxyJump or ProxyCommand of the configuration.
    `ProxyCommand=${proxyCommand}`,
  ]
  return [
    '-v',
    ...(target.configFile === undefined ? [] : ['-F', target.configFile]),
    ...options.flatMap((o) => ['-o', o]),
    '-p', String(target.port),
    '-l', target.user,
    '-N',
    '--', target.alias,
  ]
}

/**
 * Runs the machine's `ssh` to the host, over `route` (the path ssh2 took), and reads what it
 * says of the host's certificate.
 */
export async function checkHostCertificate(opts: {
  target: SshTarget
  knownHosts: {user: string[]; global: string[]}
  keyType: string
  route: () => Promise<Duplex>
  signal?: AbortSignal
  timeoutMs?: number
}): Promise<CertificateVerdict> {
  const algorithms = certificateAlgorithms(opts.keyType)
  if (algorithms === undefined) return {certified: false, reason: `OpenSSH has no host certificates for ${opts.keyType} keys`}
  const result = await withRelay(opts.route, (proxyCommand) =>
    runTool('ssh', checkArgs(opts.target, opts.knownHosts, algorithms, proxyCommand), {
      env: 'user',
      // OpenSSH runs a ProxyCommand with $SHELL; the command is quoted for a POSIX shell.
      extraEnv: {SHELL: '/bin/sh'},
      signal: opts.signal,
      timeoutMs: opts.timeoutMs ?? 15_000,
    }),
  )
  if (!result.started) return {certified: false, reason: "OpenSSH's ssh could not be run to check it"}
  if (result.timedOut) return {certified: false, reason: `OpenSSH did not finish checking it in ${Math.round((opts.timeoutMs ?? 15_000) / 1000)} s`}
  return readCertificateVerdict(result.stderr)
}

const CERT_LINE = /^debug1: Server host certificate: (\S+) (SHA256:[A-Za-z0-9+/]+), serial \d+ ID "(.*)" CA \S+ (SHA256:[A-Za-z0-9+/]+) valid (.*)$/m
const MATCHED = /^debug1: Host '([^'\n]*)' is known and matches the \S+-CERT host certificate\.$/gm
const CA_PART = /" CA \S+ SHA256:[A-Za-z0-9+/]+ valid /g

/**
 * Reads `ssh -v`'s output (OpenSSH 7 to 9 print these lines alike). Certified takes three
 * things: the certificate line, OpenSSH's match of its CA to a known_hosts line for the host,
 * and the key exchange going on past the host key check (NEWKEYS), which OpenSSH does only
 * after the certificate's validity and principals passed; any complaint about the
 * certificate in between undoes it.
 */
export function readCertificateVerdict(output: string): CertificateVerdict {
  // OpenSSH ends its log lines with CR LF when it writes them to stderr.
  const stderr = output.replaceAll('\r', '')
  const cert = CERT_LINE.exec(stderr)
  if (!cert) {
    if (/no matching host key type found/.test(stderr)) return {certified: false, reason: 'the host offers no certificate for its key'}
    const said = stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('debug') && !l.startsWith('OpenSSH_')).at(-1)
    return {certified: false, reason: `OpenSSH could not check it${said ? ` (${said.trim()})` : ''}`}
  }
  const [, , keyFingerprint, id, caFingerprint, validity] = cert
  // The certificate's ID is the host's own text, which OpenSSH prints as it is, newlines and
  // all: a host can write lines that look like OpenSSH's into it. The key's fingerprint comes
  // before the ID; everything after it counts only if each line read is there once.
  const count = (pattern: RegExp) => stderr.match(pattern)?.length ?? 0
  if (count(/^debug1: Server host certificate: /gm) !== 1 || count(CA_PART) !== 1 || count(MATCHED) > 1 || count(/SSH2_MSG_NEWKEYS sent/g) > 1) {
    return {certified: false, reason: "its host certificate's ID holds lines that imitate OpenSSH's output"}
  }
  const after = stderr.slice(cert.index)
  if (/is marked as revoked|REVOKED HOST KEY/.test(after)) {
    return {certified: false, revoked: true, caFingerprint, reason: `the CA that signed its certificate (${caFingerprint}) or its key is marked @revoked`}
  }
  const invalid = /^(?:Certificate invalid: |Certificate )(.*)$/m.exec(after)
  if (invalid) return {certified: false, caFingerprint, reason: certificateProblem(invalid[1], validity)}
  const matched = new RegExp(MATCHED.source, 'm').exec(after)
  if (!matched || /Retry with plain key/.test(after) || !/^debug1: SSH2_MSG_NEWKEYS sent$/m.test(after) || /Host key verification failed/.test(after)) {
    return {certified: false, caFingerprint, reason: `its host certificate is signed by a CA (${caFingerprint}) that no @cert-authority line names for this host`}
  }
  return {certified: true, keyFingerprint, caFingerprint, id, matchedName: matched[1]}
}

function certificateProblem(said: string, validity: string): string {
  if (said === 'expired') return `its host certificate has expired (valid ${validity})`
  if (said === 'not yet valid') return `its host certificate is not valid yet (valid ${validity})`
  if (said.startsWith('name is not a listed principal')) return "its host certificate's principals do not name this host"
  return `OpenSSH refused its host certificate: ${said}`
}
