import {createConnection} from 'node:net'
import type {Duplex} from 'node:stream'

import ssh2 from 'ssh2'
import type {Client as ClientType} from 'ssh2'

import {ShienError} from '../errors.js'
import {handshakeClock} from './handshake-clock.js'
import {checkHostCertificate} from './host-certificate.js'
import {hostKeyVerifier, type NewHostKey} from './host-key-verifier.js'

export type {NewHostKey} from './host-key-verifier.js'
import {knownHostsName, readKnownHostsFiles} from './known-hosts.js'
import {type AskPassphrase, type AuthAttempt, authAttempts, type AuthNotes} from './ssh-auth.js'
import type {SshTarget} from './ssh-target.js'

const {Client} = ssh2

/** What the user is shown for a host key seen for the first time. */
export interface ConnectOptions {
  target: SshTarget
  /** When set, the one user known_hosts file (instead of the target's UserKnownHostsFile). */
  knownHostsPath?: string
  /** Asked once for an unknown host key (of the blade or of a ProxyJump hop); true adds it. */
  confirmNewHostKey: (key: NewHostKey) => Promise<boolean>
  /** The agent `IdentityAgent SSH_AUTH_SOCK` (the default) means. */
  agentSocket?: string
  /** Asks a key file's passphrase on a terminal; without it such keys are refused. */
  askPassphrase?: AskPassphrase
  signal?: AbortSignal
  timeoutMs?: number
}

/** An authenticated SSH connection to a blade (through its ProxyJump hops, if any). */
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

/**
 * Connects and authenticates, hop by hop through the target's ProxyJump chain (each hop a
 * forwarded channel of the one before), verifying every host key against known_hosts (never
 * skipping it): a changed key is an error, an unknown one is confirmed through
 * `confirmNewHostKey` as StrictHostKeyChecking says.
 */
export async function connect(opts: ConnectOptions): Promise<Connection> {
  const hops = [...opts.target.via, opts.target]
  const hopOpts = {...opts, askPassphrase: opts.askPassphrase && oncePerFile(opts.askPassphrase)}
  const opened: ClientType[] = []
  const closeAll = () => {
    for (const client of opened.toReversed()) client.end()
  }
  try {
    let sock: Duplex | undefined
    for (const [index, hop] of hops.entries()) {
      // The way to this hop again, for OpenSSH's check of its host certificate: the same TCP
      // address, or a channel of the hop before it, whose key was verified already.
      const before = opened.at(-1)
      const route = before === undefined ? () => tcpRoute(hop) : () => forward(before, hops[index - 1], hop)
      const login = await openHop(hop, sock, route, hopOpts)
      opened.push(login.client)
      const next = hops[index + 1]
      if (next === undefined) return {...login, target: opts.target, close: closeAll}
      sock = await forward(login.client, hop, next)
    }
  } catch (error) {
    closeAll()
    throw error
  }
  throw new Error('Internal error: a connection without hops.')
}

/**
 * A chain logs in with the same key file at every hop: ask for its passphrase once, and again
 * only when the remembered answer turned out wrong (a second try).
 */
function oncePerFile(ask: AskPassphrase): AskPassphrase {
  const answers = new Map<string, string>()
  return async (file, attempt) => {
    const known = answers.get(file)
    if (attempt === 1 && known !== undefined) return known
    const answer = await ask(file, attempt)
    answers.set(file, answer)
    return answer
  }
}

function forward(client: ClientType, from: SshTarget, to: SshTarget): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    client.forwardOut('127.0.0.1', 0, to.hostName, to.port, (error, channel) => {
      if (!error) return resolve(channel)
      reject(connectionError(`The jump host ${from.alias} could not open a connection to ${to.hostName}:${to.port}: ${error.message}.`, [
        `Check ProxyJump and HostName for ${to.alias} (ssh -G ${to.alias}), and that ${from.alias} allows forwarding.`,
      ], error))
    })
  })
}

function tcpRoute(target: SshTarget): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({host: target.hostName, port: target.port}, () => {
      socket.off('error', reject)
      resolve(socket)
    })
    socket.once('error', reject)
  })
}

function agentFor(target: SshTarget, sshAuthSock: string | undefined): string | undefined {
  if (target.identityAgent === 'none') return undefined
  if (target.identityAgent === 'SSH_AUTH_SOCK') return sshAuthSock
  return target.identityAgent || undefined
}

async function openHop(target: SshTarget, sock: Duplex | undefined, route: () => Promise<Duplex>, opts: ConnectOptions): Promise<Omit<Connection, 'target' | 'close'>> {
  // OpenSSH looks a HostKeyAlias up as it is, without the port.
  const name = target.hostKeyAlias ?? knownHostsName(target.hostName, target.port)
  const userFiles = opts.knownHostsPath === undefined ? target.userKnownHostsFiles : [opts.knownHostsPath]
  const known = await readKnownHostsFiles([...userFiles, ...target.globalKnownHostsFiles])
  const client = new Client()
  // The handshake's time limit stops while the user reads a fingerprint or types a passphrase.
  const clock = handshakeClock(opts.timeoutMs ?? 20_000, () => {
    client.destroy()
    client.emit('error', Object.assign(new Error('Timed out while waiting for handshake'), {level: 'client-timeout'}))
  })
  const whileAsking = <T>(question: () => Promise<T>): Promise<T> => {
    clock.pause()
    return question().finally(() => clock.resume())
  }
  const ask = opts.askPassphrase
  const {attempts, notes} = await authAttempts({
    username: target.user,
    identityFiles: target.identityFiles,
    identitiesOnly: target.identitiesOnly,
    agentSocket: agentFor(target, opts.agentSocket),
    askPassphrase: ask && ((file, attempt) => whileAsking(() => ask(file, attempt))),
  }).catch((error: unknown) => {
    clock.stop()
    throw error
  })
  if (attempts.length === 0) {
    clock.stop()
    throw noKey(target, notes)
  }
  let current: AuthAttempt | undefined
  const queue = [...attempts]
  const hostKey = hostKeyVerifier({
    target,
    name,
    known,
    newKeysFile: userFiles[0],
    confirm: (key) => whileAsking(() => opts.confirmNewHostKey(key)),
    // OpenSSH's check has a time limit of its own.
    certify: (keyType) => whileAsking(() => checkHostCertificate({target, knownHosts: {user: userFiles, global: target.globalKnownHostsFiles}, keyType, route, signal: opts.signal})),
  })

  await new Promise<void>((resolve, reject) => {
    // Once this promise is settled, whatever the half-made connection still reports (the socket
    // closing, the handshake clock) has no one to tell: it must not crash the process.
    const settled = () => {
      clock.stop()
      client.on('error', () => undefined)
    }
    const onAbort = () => {
      settled()
      client.end()
      reject(opts.signal?.reason)
    }
    opts.signal?.addEventListener('abort', onAbort, {once: true})
    client.once('ready', () => {
      clock.stop()
      opts.signal?.removeEventListener('abort', onAbort)
      // From here a lost connection (reset, keepalives unanswered) shows as the channels in use
      // closing, which each caller reports (CONNECTION_LOST); an error event must not crash.
      client.on('error', () => undefined)
      resolve()
    })
    client.once('error', (error: Error & {level?: string}) => {
      settled()
      opts.signal?.removeEventListener('abort', onAbort)
      reject(hostKey.problem() ?? describeConnectError(error, target, notes))
    })
    client.connect({
      ...(sock ? {sock} : {host: target.hostName, port: target.port}),
      username: target.user,
      readyTimeout: 0,
      keepaliveInterval: 15_000,
      hostVerifier: hostKey.verify,
      authHandler: (_left: unknown, _partial: unknown, next: (a: unknown) => void) => {
        void nextMethod(queue, notes).then(([attempt, method]) => {
          current = attempt
          next(method ?? false)
        })
      },
    } as never)
  })
  return {client, publicKey: current!.publicKey, hostKeyFingerprint: hostKey.fingerprint()}
}

/** The next attempt that can be made (a locked key with no terminal is passed over). */
async function nextMethod(queue: AuthAttempt[], notes: AuthNotes): Promise<[AuthAttempt | undefined, unknown]> {
  for (let attempt = queue.shift(); attempt; attempt = queue.shift()) {
    const method = await attempt.method().catch((error: unknown) => {
      notes.skipped.push(`${attempt!.label} (${(error as Error).message})`)
      return undefined
    })
    if (method) {
      notes.tried.push(attempt.label)
      return [attempt, method]
    }
  }
  return [undefined, undefined]
}

function noKey(target: SshTarget, notes: AuthNotes): ShienError {
  return connectionError(`No SSH key to log in to ${target.alias} with.`, [
    notes.skipped.length > 0 ? `Load your key into ssh-agent: ssh-add (skipped: ${notes.skipped.join(', ')})` : 'Create one: ssh-keygen -t ed25519',
    'Or name it with IdentityFile in ~/.ssh/config.',
  ])
}

function lockedKeys(target: SshTarget, locked: string[], cause: unknown): ShienError {
  return new ShienError(`${locked.join(', ')} ${locked.length > 1 ? 'are' : 'is'} protected by a passphrase, and there is no terminal to ask it on (logging in to ${target.alias}).`, {
    code: 'SSH_KEY_PASSPHRASE',
    exit: 'connection',
    suggestions: [`Load it into ssh-agent first: ssh-add ${locked[0]}`, 'Or run the command on a terminal, where shien asks for the passphrase.'],
    cause,
  })
}

function describeConnectError(error: Error & {level?: string; code?: string}, target: SshTarget, notes: AuthNotes) {
  const where = `${target.user}@${target.hostName}:${target.port}`
  if (error.level === 'client-authentication') {
    if (notes.locked.length > 0) return lockedKeys(target, notes.locked, error)
    const unused = notes.skipped.length > 0 ? ` Not used: ${notes.skipped.join(', ')}.` : ''
    if (notes.tried.length === 0) return connectionError(`No SSH key could be used to log in to ${where}.${unused}`, ['Load your key into ssh-agent: ssh-add'], error)
    return connectionError(`${where} refused every key offered (${notes.tried.join(', ')}).${unused}`, [
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
