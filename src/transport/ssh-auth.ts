import {readFile} from 'node:fs/promises'

import ssh2 from 'ssh2'
import type {AuthenticationType, ParsedKey} from 'ssh2'

const {BaseAgent, createAgent, utils} = ssh2

/** One way to log in, and the public key it proves (installed into the VM by harden). */
export interface AuthAttempt {
  label: string
  publicKey: string
  method: AuthenticationType | Record<string, unknown>
}

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

async function agentAttempts(socket: string, username: string): Promise<AuthAttempt[]> {
  const agent = createAgent(socket)
  const keys = await new Promise<ParsedKey[]>((resolve) => {
    agent.getIdentities((err, found) => resolve(err ? [] : ((found ?? []) as ParsedKey[])))
  })
  return keys.map((key) => ({
    label: `ssh-agent key ${key.comment || key.type}`,
    publicKey: publicLine(key),
    method: {type: 'agent', username, agent: new OneKeyAgent(agent, key)},
  }))
}

async function fileAttempt(file: string, username: string, skipped: string[]): Promise<AuthAttempt | undefined> {
  let data: Buffer
  try {
    data = await readFile(file)
  } catch {
    return undefined
  }
  const parsed = utils.parseKey(data)
  const key = Array.isArray(parsed) ? parsed[0] : parsed
  if (key instanceof Error || !key.isPrivateKey()) {
    skipped.push(`${file} (${key instanceof Error ? key.message : 'not a private key'})`)
    return undefined
  }
  return {label: file, publicKey: publicLine(key), method: {type: 'publickey', username, key: data}}
}

/**
 * The attempts OpenSSH would make, in its order: the agent's keys (unless IdentitiesOnly),
 * then the identity files. Encrypted key files are skipped and reported: load them with ssh-add.
 */
export async function authAttempts(opts: {
  username: string
  identityFiles: string[]
  identitiesOnly: boolean
  agentSocket?: string
}): Promise<{attempts: AuthAttempt[]; skipped: string[]}> {
  const skipped: string[] = []
  const attempts: AuthAttempt[] = []
  if (opts.agentSocket && !opts.identitiesOnly) attempts.push(...(await agentAttempts(opts.agentSocket, opts.username)))
  for (const file of opts.identityFiles) {
    const attempt = await fileAttempt(file, opts.username, skipped)
    if (attempt) attempts.push(attempt)
  }
  return {attempts, skipped}
}
