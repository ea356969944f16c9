import {readFile} from 'node:fs/promises'

import ssh2 from 'ssh2'
import type {AuthenticationType, ParsedKey} from 'ssh2'

const {BaseAgent, createAgent, utils} = ssh2

/** One way to log in, and the public key it proves (installed into the VM by harden). */
export interface AuthAttempt {
  label: string
  publicKey: string
  /** The ssh2 method; undefined when it could not be made (a passphrase nobody could give). */
  method: () => Promise<AuthenticationType | Record<string, unknown> | undefined>
}

/** Asks for a key file's passphrase (on a terminal, never echoed). */
export type AskPassphrase = (file: string, attempt: number) => Promise<string>

/**
 * An agent that offers exactly one of the real agent's keys, so that after login shien knows
 * which key worked: that key is what the student uses, and what gets installed in the VM.
 */
class OneKeyAgent extends BaseAgent {
  constructor(
    private readonly agent: InstanceType<typeof BaseAgent>,
    private readonly key: ParsedKey,
  ) {
    super()
  }

  override getIdentities(cb: (err: Error | undefined, keys?: ParsedKey[]) => void): void {
    cb(undefined, [this.key])
  }

  override sign(pubKey: ParsedKey, data: Buffer, options: unknown, cb?: (err: Error | undefined, sig?: Buffer) => void): void {
    this.agent.sign(pubKey, data, options as never, cb as never)
  }
}

function publicLine(key: ParsedKey): string {
  return `${key.type} ${key.getPublicSSH().toString('base64')}${key.comment ? ` ${key.comment}` : ''}`
}

async function agentKeys(socket: string): Promise<{agent: InstanceType<typeof BaseAgent>; keys: ParsedKey[]}> {
  const agent = createAgent(socket)
  const keys = await new Promise<ParsedKey[]>((resolve) => {
    agent.getIdentities((err, found) => resolve(err ? [] : ((found ?? []) as ParsedKey[])))
  })
  return {agent, keys}
}

function agentAttempt(agent: InstanceType<typeof BaseAgent>, key: ParsedKey, username: string): AuthAttempt {
  const method = {type: 'agent', username, agent: new OneKeyAgent(agent, key)}
  return {label: `ssh-agent key ${key.comment || key.type}`, publicKey: publicLine(key), method: async () => method}
}

const blobOf = (key: ParsedKey) => key.getPublicSSH().toString('base64')

/** The public half of an identity: its `.pub` file, else the unencrypted private key's own. */
async function identityBlob(file: string): Promise<string | undefined> {
  const pub = await readFile(`${file}.pub`, 'utf8').catch(() => undefined)
  const fromPub = pub?.trim().split(/\s+/)[1]
  if (fromPub) return fromPub
  const data = await readFile(file).catch(() => undefined)
  if (!data) return undefined
  const parsed = utils.parseKey(data)
  const key = Array.isArray(parsed) ? parsed[0] : parsed
  return key instanceof Error ? undefined : blobOf(key)
}

/** What is learnt while logging in with key files, for the error when nothing worked. */
export interface AuthNotes {
  /** Files that could not be used, and why. */
  skipped: string[]
  /** Passphrase-protected files with no terminal to ask on. */
  locked: string[]
  /** What was offered to the server. */
  tried: string[]
}

async function fileAttempt(file: string, username: string, notes: AuthNotes, ask?: AskPassphrase): Promise<AuthAttempt | undefined> {
  let data: Buffer
  try {
    data = await readFile(file)
  } catch {
    return undefined
  }
  const parsed = utils.parseKey(data)
  const key = Array.isArray(parsed) ? parsed[0] : parsed
  if (!(key instanceof Error)) {
    if (!key.isPrivateKey()) {
      notes.skipped.push(`${file} (not a private key)`)
      return undefined
    }
    return {label: file, publicKey: publicLine(key), method: async () => ({type: 'publickey', username, key: data})}
  }
  if (!/encrypted|passphrase/i.test(key.message)) {
    notes.skipped.push(`${file} (${key.message})`)
    return undefined
  }
  const pub = (await readFile(`${file}.pub`, 'utf8').catch(() => '')).trim()
  const attempt: AuthAttempt = {label: file, publicKey: pub, method: async () => undefined}
  attempt.method = async () => {
    if (!ask) {
      notes.locked.push(file)
      return undefined
    }
    // Three tries, as ssh gives; the passphrase lives only in this closure, never in argv.
    for (let tries = 1; tries <= 3; tries++) {
      const passphrase = await ask(file, tries)
      const opened = utils.parseKey(data, passphrase)
      const unlocked = Array.isArray(opened) ? opened[0] : opened
      if (!(unlocked instanceof Error)) {
        attempt.publicKey = publicLine(unlocked)
        // The opened key itself: ssh2 would otherwise decrypt it again (bcrypt, slow in JS).
        return {type: 'publickey', username, key: unlocked}
      }
    }
    notes.skipped.push(`${file} (wrong passphrase, 3 tries)`)
    return undefined
  }
  return attempt
}

/**
 * The attempts OpenSSH would make, in its order: the agent's keys (with IdentitiesOnly, only
 * those whose public half matches an IdentityFile or its `.pub`), then the identity files the
 * agent does not hold. A passphrase-protected file is asked for when its turn comes.
 */
export async function authAttempts(opts: {
  username: string
  identityFiles: string[]
  identitiesOnly: boolean
  agentSocket?: string
  askPassphrase?: AskPassphrase
}): Promise<{attempts: AuthAttempt[]; notes: AuthNotes}> {
  const notes: AuthNotes = {skipped: [], locked: [], tried: []}
  const attempts: AuthAttempt[] = []
  const {agent, keys} = opts.agentSocket ? await agentKeys(opts.agentSocket) : {agent: undefined, keys: []}
  const blobs = await Promise.all(opts.identityFiles.map((file) => identityBlob(file)))
  const inAgent = (blob: string | undefined) => keys.find((key) => blob !== undefined && blobOf(key) === blob)
  if (agent) {
    const offered = opts.identitiesOnly ? blobs.map((blob) => inAgent(blob)).filter((k) => k !== undefined) : keys
    attempts.push(...offered.map((key) => agentAttempt(agent, key, opts.username)))
  }
  for (const [index, file] of opts.identityFiles.entries()) {
    if (agent && inAgent(blobs[index])) continue
    const attempt = await fileAttempt(file, opts.username, notes, opts.askPassphrase)
    if (attempt) attempts.push(attempt)
  }
  return {attempts, notes}
}
