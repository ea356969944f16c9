import ssh2 from 'ssh2'
import type {Client as ClientType} from 'ssh2'

import {ShienError} from '../errors.js'
import {type AuthAttempt, authAttempts} from './ssh-auth.js'
import type {SshTarget} from './ssh-target.js'
import {addKnownHost, checkHostKey, fingerprint, type HostKeyVerdict, keyType, knownHostsName, readKnownHosts} from './known-hosts.js'

const {Client} = ssh2

/** What the user is shown for a host key seen for the first time. */
export interface NewHostKey {
  host: string
  type: string
  fingerprint: string
}

export interface ConnectOptions {
  target: SshTarget
  knownHostsPath: string
  /** Asked once for an unknown host key; true adds it to known_hosts. */
  confirmNewHostKey: (key: NewHostKey) => Promise<boolean>
  agentSocket?: string
  signal?: AbortSignal
  timeoutMs?: number
}

/** An authenticated SSH connection to a blade. */
export interface Connection {
  client: ClientType
  target: SshTarget
  /** The authorized_keys line of the key that logged in. */
  publicKey: string
  hostKeyFingerprint: string
  close(): void
}

const connectionError = (message: string, suggestions: string[], cause?: unknown) =>
  new ShienError(message, {code: 'SSH_CONNECT', exit: 'connection', suggestions, cause})

function hostKeyError(verdict: HostKeyVerdict, host: string, knownHosts: string, fp: string): ShienError {
  if (verdict.status === 'revoked') {
    return connectionError(`The host key of ${host} (${fp}) is marked @revoked in ${knownHosts} line ${verdict.line}.`, [
      'Ask an admin which key the blade should have.',
    ])
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

/**
 * Connects and authenticates, verifying the host key against known_hosts (never skipping it):
 * a changed key is an error, an unknown one is confirmed through `confirmNewHostKey`.
 */
export async function connect(opts: ConnectOptions): Promise<Connection> {
  const {target} = opts
  const name = knownHostsName(target.hostName, target.port)
  const knownText = await readKnownHosts(opts.knownHostsPath)
  const {attempts, skipped} = await authAttempts({
    username: target.user,
    identityFiles: target.identityFiles,
    identitiesOnly: target.identitiesOnly,
    agentSocket: opts.agentSocket,
  })
  if (attempts.length === 0) {
    throw connectionError(`No SSH key to log in to ${target.alias} with.`, [
      skipped.length > 0 ? `Load your key into ssh-agent: ssh-add (skipped: ${skipped.join(', ')})` : 'Create one: ssh-keygen -t ed25519',
      'Or name it with IdentityFile in ~/.ssh/config.',
    ])
  }
  const client = new Client()
  let hostProblem: ShienError | undefined
  let hostFingerprint = ''
  let current: AuthAttempt | undefined
  const queue = [...attempts]

  const hostVerifier = (key: Buffer, verify: (ok: boolean) => void) => {
    hostFingerprint = fingerprint(key)
    const verdict = checkHostKey(knownText, name, key)
    if (verdict.status === 'known') return verify(true)
    if (verdict.status !== 'unknown') {
      hostProblem = hostKeyError(verdict, name, opts.knownHostsPath, hostFingerprint)
      return verify(false)
    }
    opts
      .confirmNewHostKey({host: name, type: keyType(key), fingerprint: hostFingerprint})
      .then(async (accepted) => {
        if (accepted) await addKnownHost(opts.knownHostsPath, name, key)
        else hostProblem = unknownHostRefused(name, hostFingerprint)
        verify(accepted)
      })
      .catch((error: unknown) => {
        hostProblem = error instanceof ShienError ? error : unknownHostRefused(name, hostFingerprint)
        verify(false)
      })
  }

  await new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      client.end()
      reject(opts.signal?.reason)
    }
    opts.signal?.addEventListener('abort', onAbort, {once: true})
    client.once('ready', () => {
      opts.signal?.removeEventListener('abort', onAbort)
      resolve()
    })
    client.once('error', (error: Error & {level?: string}) => {
      opts.signal?.removeEventListener('abort', onAbort)
      reject(hostProblem ?? describeConnectError(error, target, attempts))
    })
    client.connect({
      host: target.hostName,
      port: target.port,
      username: target.user,
      readyTimeout: opts.timeoutMs ?? 20_000,
      keepaliveInterval: 15_000,
      hostVerifier,
      authHandler: (_left: unknown, _partial: unknown, next: (a: unknown) => void) => {
        current = queue.shift()
        next(current ? current.method : false)
      },
    } as never)
  })
  return {
    client,
    target,
    publicKey: current!.publicKey,
    hostKeyFingerprint: hostFingerprint,
    close: () => client.end(),
  }
}

function unknownHostRefused(name: string, fp: string): ShienError {
  return new ShienError(`The host key of ${name} (${fp}) is not in known_hosts and was not accepted.`, {
    code: 'HOST_KEY_UNKNOWN',
    exit: 'connection',
    suggestions: [
      "Compare the fingerprint with the one your admin published, then run again on a terminal and answer yes,",
      'or pass --accept-new-host-key when not on a terminal.',
    ],
  })
}

function describeConnectError(error: Error & {level?: string; code?: string}, target: SshTarget, attempts: AuthAttempt[]) {
  const where = `${target.user}@${target.hostName}:${target.port}`
  if (error.level === 'client-authentication') {
    return connectionError(`${where} refused every key offered (${attempts.map((a) => a.label).join(', ')}).`, [
      'Check that your public key is in ~/.ssh/authorized_keys on the blade, or name the right IdentityFile.',
    ], error)
  }
  if (error.level === 'client-timeout') {
    return connectionError(`${where} did not answer in time.`, ['Check the host name and that you are on the university network or VPN.'], error)
  }
  return connectionError(`Cannot connect to ${where}: ${error.message}.`, [
    'Check the host name and port (ssh -v ' + target.alias + ' shows what OpenSSH does).',
  ], error)
}
