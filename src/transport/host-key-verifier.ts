import {ShienError} from '../errors.js'
import type {CertificateCheck} from './host-certificate.js'
import {addKnownHost, checkHostKeyFiles, fingerprint, type HostKeyVerdict, type KnownHostsFile, keyType, markedKeys} from './known-hosts.js'
import type {SshTarget} from './ssh-target.js'

/** A host key not in any known_hosts file, as the student is asked about it. */
export interface NewHostKey {
  host: string
  type: string
  fingerprint: string
  /** Why a `@cert-authority` line for the host did not vouch for this key, when one named it. */
  certificate?: string
}

export interface HostKeyCheck {
  /** ssh2's hostVerifier. */
  verify: (key: Buffer, verify: (ok: boolean) => void) => void
  /** Why the key was refused, once it was. */
  problem(): ShienError | undefined
  fingerprint(): string
}

/**
 * Checks one host's key against its known_hosts files, as StrictHostKeyChecking says: a known
 * key passes; a revoked or changed one is refused. An unknown key whose host a
 * `@cert-authority` line names is shown to OpenSSH (`certify`), which checks the host's
 * certificate: certified, and the very key ssh2 was shown, it passes and nothing is written.
 * Otherwise an unknown key is refused under `yes`, added under `accept-new`, and otherwise
 * (`ask`, and `no`, which shien does not act on) passed to `confirm`, then added to
 * `newKeysFile` (hashed under HashKnownHosts) when accepted.
 */
export function hostKeyVerifier(opts: {
  target: SshTarget
  /** The name looked up: `host`, `[host]:port`, or the HostKeyAlias. */
  name: string
  known: KnownHostsFile[]
  /** Where an accepted key is written (none: accepted for this connection only). */
  newKeysFile?: string
  confirm: (key: NewHostKey) => Promise<boolean>
  /** OpenSSH's check of the host's certificate (none: `@cert-authority` lines vouch for nothing). */
  certify?: CertificateCheck
}): HostKeyCheck {
  const {target, name} = opts
  let problem: ShienError | undefined
  let seen = ''
  const decide = async (key: Buffer): Promise<boolean> => {
    seen = fingerprint(key)
    const verdict = checkHostKeyFiles(opts.known, name, key)
    if (verdict.status === 'known') return true
    if (verdict.status !== 'unknown') throw hostKeyError(verdict, name, verdict.path ?? 'known_hosts', seen)
    const certificate = await certified(opts, key, seen)
    if (certificate.status === 'certified') return true
    const why = certificate.status === 'not-certified' ? certificate.reason : undefined
    const because = why === undefined ? '' : ` A @cert-authority line names ${name}, but ${why}.`
    if (target.strictHostKeyChecking === 'yes') {
      throw unknownHostRefused(name, seen, because + ' StrictHostKeyChecking is yes for this host in your SSH configuration, which --accept-new-host-key does not overrule.', [
        'Compare the fingerprint with the one your admin published, then add the key to known_hosts',
        `(for example: ssh -o StrictHostKeyChecking=ask ${target.alias} true, and answer yes),`,
        'or set StrictHostKeyChecking accept-new for this host in ~/.ssh/config.',
      ])
    }
    const accepted = target.strictHostKeyChecking === 'accept-new' || (await opts.confirm({host: name, type: keyType(key), fingerprint: seen, ...(why === undefined ? {} : {certificate: why})}))
    if (!accepted) throw unknownHostRefused(name, seen, because)
    if (opts.newKeysFile !== undefined) await addKnownHost(opts.newKeysFile, name, key, target.hashKnownHosts)
    return true
  }
  const verify = (key: Buffer, verify: (ok: boolean) => void) => {
    decide(key).then(verify, (error: unknown) => {
      problem = error instanceof ShienError ? error : unknownHostRefused(name, seen)
      verify(false)
    })
  }
  return {verify, problem: () => problem, fingerprint: () => seen}
}

/**
 * The names a `@cert-authority` line may give the host under, as OpenSSH looks them up: the
 * HostKeyAlias, or `[host]:port` and then, off port 22, the bare host name too.
 */
function certificateNames(target: SshTarget, name: string): string[] {
  return target.hostKeyAlias === undefined && name !== target.hostName ? [name, target.hostName] : [name]
}

type CertificateOutcome = {status: 'certified'} | {status: 'not-certified'; reason: string} | {status: 'no-ca'}

/**
 * Whether the host's certificate vouches for `key`: OpenSSH must say it is certified, by a CA
 * that one of these known_hosts files names for the host and none marks @revoked, and for this
 * very key. A certificate for another key means another machine answered one of the two
 * connections: refused as a changed key.
 */
async function certified(opts: Parameters<typeof hostKeyVerifier>[0], key: Buffer, seen: string): Promise<CertificateOutcome> {
  const names = certificateNames(opts.target, opts.name)
  const authorities = markedKeys(opts.known, names, '@cert-authority')
  if (authorities.length === 0 || opts.certify === undefined) return {status: 'no-ca'}
  const verdict = await opts.certify(keyType(key))
  const revoked = markedKeys(opts.known, names, '@revoked').find((line) => line.fingerprint === verdict.caFingerprint)
  if (revoked !== undefined || (!verdict.certified && verdict.revoked)) throw revokedAuthority(opts.name, verdict.caFingerprint, revoked)
  if (!verdict.certified) return {status: 'not-certified', reason: verdict.reason}
  const authority = authorities.find((line) => line.fingerprint === verdict.caFingerprint && line.name === verdict.matchedName)
  if (authority === undefined) {
    return {status: 'not-certified', reason: `OpenSSH accepted its certificate by CA ${verdict.caFingerprint}, which no @cert-authority line shien read names for it`}
  }
  if (verdict.keyFingerprint !== seen) throw certifiedKeyDiffers(opts.name, seen, verdict.keyFingerprint, authority.path, authority.line)
  return {status: 'certified'}
}

function revokedAuthority(host: string, ca: string | undefined, line: {path: string; line: number} | undefined): ShienError {
  const where = line === undefined ? 'your known_hosts files' : `${line.path} line ${line.line}`
  return new ShienError(`The host certificate of ${host} is signed by a CA${ca ? ` (${ca})` : ''} that ${where} marks @revoked.`, {
    code: 'SSH_CONNECT',
    exit: 'connection',
    suggestions: ['Ask an admin which CA signs the blade host keys now, and for its @cert-authority line.'],
  })
}

function certifiedKeyDiffers(host: string, seen: string, certifiedKey: string, path: string, line: number): ShienError {
  return new ShienError(
    `The host key of ${host} is ${seen}, but the key its CA (${path} line ${line}) certifies for it is ${certifiedKey}. ` +
      'Someone may be intercepting the connection.',
    {
      code: 'HOST_KEY_CHANGED',
      exit: 'connection',
      suggestions: [`Run again; if it says the same, ask an admin for the blade's fingerprint (ssh -v ${host} shows the certified one).`],
    },
  )
}

function hostKeyError(verdict: HostKeyVerdict, host: string, knownHosts: string, fp: string): ShienError {
  if (verdict.status === 'revoked') {
    return new ShienError(`The host key of ${host} (${fp}) is marked @revoked in ${knownHosts} line ${verdict.line}.`, {
      code: 'SSH_CONNECT',
      exit: 'connection',
      suggestions: ['Ask an admin which key the blade should have.'],
    })
  }
  const line = verdict.status === 'changed' ? verdict.line : 0
  return new ShienError(
    `The host key of ${host} has CHANGED (now ${fp}); ${knownHosts} line ${line} has another one. ` +
      'Someone may be intercepting the connection, or the blade was reinstalled.',
    {
      code: 'HOST_KEY_CHANGED',
      exit: 'connection',
      suggestions: [`Ask an admin for the blade's fingerprint; if it is ${fp}, remove line ${line} of ${knownHosts}.`],
    },
  )
}

function unknownHostRefused(name: string, fp: string, why = '', suggestions?: string[]): ShienError {
  return new ShienError(`The host key of ${name} (${fp}) is not in known_hosts and was not accepted.${why ? ' ' + why.trim() : ''}`, {
    code: 'HOST_KEY_UNKNOWN',
    exit: 'connection',
    suggestions: suggestions ?? [
      "Compare the fingerprint with the one your admin published, then run again on a terminal and answer yes,",
      'or pass --accept-new-host-key when not on a terminal.',
    ],
  })
}
