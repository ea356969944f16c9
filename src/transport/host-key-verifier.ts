import {ShienError} from '../errors.js'
import {addKnownHost, checkHostKeyFiles, fingerprint, type HostKeyVerdict, type KnownHostsFile, keyType} from './known-hosts.js'
import type {SshTarget} from './ssh-target.js'

/** A host key not in any known_hosts file, as the student is asked about it. */
export interface NewHostKey {
  host: string
  type: string
  fingerprint: string
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
 * key passes; a revoked or changed one is refused; an unknown one is refused under `yes`, added
 * under `accept-new`, and otherwise (`ask`, and `no`, which shien does not act on) passed to
 * `confirm`, then added to `newKeysFile` (hashed under HashKnownHosts) when accepted.
 */
export function hostKeyVerifier(opts: {
  target: SshTarget
  /** The name looked up: `host`, `[host]:port`, or the HostKeyAlias. */
  name: string
  known: KnownHostsFile[]
  /** Where an accepted key is written (none: accepted for this connection only). */
  newKeysFile?: string
  confirm: (key: NewHostKey) => Promise<boolean>
}): HostKeyCheck {
  const {target, name} = opts
  let problem: ShienError | undefined
  let seen = ''
  const verify = (key: Buffer, verify: (ok: boolean) => void) => {
    seen = fingerprint(key)
    const verdict = checkHostKeyFiles(opts.known, name, key)
    if (verdict.status === 'known') return verify(true)
    if (verdict.status !== 'unknown') {
      problem = hostKeyError(verdict, name, verdict.path ?? 'known_hosts', seen)
      return verify(false)
    }
    if (target.strictHostKeyChecking === 'yes') {
      problem = unknownHostRefused(name, seen, 'StrictHostKeyChecking is yes for this host in your SSH configuration, which --accept-new-host-key does not overrule.', [
        'Compare the fingerprint with the one your admin published, then add the key to known_hosts',
        `(for example: ssh -o StrictHostKeyChecking=ask ${target.alias} true, and answer yes),`,
        'or set StrictHostKeyChecking accept-new for this host in ~/.ssh/config.',
      ])
      return verify(false)
    }
    const accept = target.strictHostKeyChecking === 'accept-new' ? Promise.resolve(true) : opts.confirm({host: name, type: keyType(key), fingerprint: seen})
    accept
      .then(async (accepted) => {
        if (accepted && opts.newKeysFile !== undefined) await addKnownHost(opts.newKeysFile, name, key, target.hashKnownHosts)
        else problem = unknownHostRefused(name, seen)
        verify(accepted)
      })
      .catch((error: unknown) => {
        problem = error instanceof ShienError ? error : unknownHostRefused(name, seen)
        verify(false)
      })
  }
  return {verify, problem: () => problem, fingerprint: () => seen}
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
  return new ShienError(`The host key of ${name} (${fp}) is not in known_hosts and was not accepted.${why ? ' ' + why : ''}`, {
    code: 'HOST_KEY_UNKNOWN',
    exit: 'connection',
    suggestions: suggestions ?? [
      "Compare the fingerprint with the one your admin published, then run again on a terminal and answer yes,",
      'or pass --accept-new-host-key when not on a terminal.',
    ],
  })
}
