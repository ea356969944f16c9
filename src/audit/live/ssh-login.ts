/**
 * Adapter: tries credentials against one guest sshd as one account, the way an attacker on the
 * network would, and stops at the first that works. A login that succeeds is closed at once: no
 * session is opened and nothing runs in the guest. sshd drops a connection after MaxAuthTries
 * failures, so the remaining credentials continue on a new connection.
 *
 * The guest's host key is recorded, not verified: the credentials tried are public (Vagrant's
 * insecure keys, well-known passwords) and the endpoint is this blade's own forward, so there is
 * nothing a man in the middle could learn, and an unknown key is exactly what a fresh VM has.
 */
import {createHash} from 'node:crypto'

import ssh2 from 'ssh2'

import type {CandidateSource} from '../passwords.js'
import type {Endpoint} from './domains.js'

export type LoginCredential =
  | {kind: 'key'; keyType: string; key: string}
  | {kind: 'password'; password: string; source: CandidateSource}

export interface LoginResult {
  /** Methods sshd offers (`publickey`, `password`, `keyboard-interactive`...). */
  methods: string[]
  hostKey?: string
  accepted?: LoginCredential
  tried: number
  /** Set when sshd could not be reached or talked to (not for refused logins). */
  error?: string
}

interface Connection {
  methods?: string[]
  hostKey?: string
  accepted?: LoginCredential
  tried: number
  error?: string
}

const usable = (c: LoginCredential, methods: string[]) =>
  c.kind === 'key' ? methods.includes('publickey') : methods.includes('password') || methods.includes('keyboard-interactive')

export async function tryLogins(endpoint: Endpoint, user: string, credentials: LoginCredential[], o: {timeoutMs: number; signal?: AbortSignal}): Promise<LoginResult> {
  const queue = [...credentials]
  const result: LoginResult = {methods: [], tried: 0}
  while (!o.signal?.aborted) {
    const c = await connectOnce(endpoint, user, queue, result.methods.length > 0 ? result.methods : undefined, o)
    result.methods = c.methods ?? result.methods
    result.hostKey ??= c.hostKey
    result.tried += c.tried
    if (c.accepted) return {...result, accepted: c.accepted}
    if (c.error && c.tried === 0) return {...result, error: c.error}
    // Stop when nothing usable is left, or a connection made no progress (no endless retries).
    if (c.tried === 0 || !queue.some((q) => usable(q, result.methods))) break
  }
  return result
}

function connectOnce(endpoint: Endpoint, user: string, queue: LoginCredential[], known: string[] | undefined, o: {timeoutMs: number; signal?: AbortSignal}): Promise<Connection> {
  return new Promise((resolve) => {
    const client = new ssh2.Client()
    const conn: Connection = {tried: 0, methods: known}
    let last: LoginCredential | undefined
    const onAbort = () => client.destroy()
    o.signal?.addEventListener('abort', onAbort, {once: true})
    client.on('ready', () => {
      conn.accepted = last
      client.end()
    })
    client.on('error', (error: Error & {level?: string}) => {
      if (error.level !== 'client-authentication') conn.error = error.message
    })
    client.on('close', () => {
      o.signal?.removeEventListener('abort', onAbort)
      resolve(conn)
    })
    const authHandler = (methodsLeft: string[] | null, _partial: boolean | null, next: (auth: unknown) => void) => {
      if (methodsLeft === null) return next({type: 'none', username: user})
      conn.methods ??= methodsLeft
      const i = queue.findIndex((c) => usable(c, conn.methods!))
      if (i < 0) return next(false)
      last = queue.splice(i, 1)[0]
      conn.tried++
      next(authFor(last, user, conn.methods!))
    }
    client.connect({
      host: endpoint.host, port: endpoint.port, username: user, readyTimeout: o.timeoutMs,
      hostVerifier: (key: Buffer) => {
        conn.hostKey = `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`
        return true
      },
      authHandler,
    } as ssh2.ConnectConfig)
  })
}

function authFor(c: LoginCredential, user: string, methods: string[]): unknown {
  if (c.kind === 'key') return {type: 'publickey', username: user, key: c.key}
  if (methods.includes('password')) return {type: 'password', username: user, password: c.password}
  // Without PasswordAuthentication, PAM may still ask for the same password this way.
  return {
    type: 'keyboard-interactive', username: user,
    prompt: (_n: string, _i: string, _l: string, prompts: unknown[], finish: (answers: string[]) => void) => finish(prompts.map(() => c.password)),
  }
}
