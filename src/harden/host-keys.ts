import {mkdtemp, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {firstErrorLine, runTool} from '../process/run.js'
import {fingerprint} from './edits.js'
import {MAX_TEXT_BYTES, setOwnerMode} from './guest-files.js'
import type {GuestfishSession} from './guestfish.js'

const HOST_KEY_TYPES = ['ed25519', 'ecdsa', 'rsa'] as const

/** The guest's host keys before and after hardening. */
export interface HostKeyChange {
  old: HostKeyInfo[]
  new: HostKeyInfo[]
}

export interface HostKeyInfo {
  file: string
  type: string
  fingerprint: string
  /** `TYPE BASE64` of a key harden made: the laptop records it in known_hosts (the old keys have none). */
  publicKey?: string
}

export interface GeneratedKeys {
  dir: string
  keys: {name: string; local: string; info: HostKeyInfo}[]
}

/** New host keys, made on the host in a private directory (mkdtemp is 0700) while the appliance boots. */
export async function generateHostKeys(signal?: AbortSignal): Promise<GeneratedKeys> {
  const dir = await mkdtemp(join(tmpdir(), 'shien-hostkeys-'))
  try {
    const keys = await Promise.all(HOST_KEY_TYPES.map(async (type) => {
      const name = `ssh_host_${type}_key`
      const local = join(dir, name)
      // An empty comment: the default would write the student's account and blade name into the guest.
      const made = await runTool('ssh-keygen', ['-q', '-N', '', '-C', '', '-t', type, '-f', local], {signal})
      if (made.exitCode !== 0) throw new Error(`ssh-keygen could not make ${name}: ${firstErrorLine(made.stderr)}`)
      const pub = await readFile(`${local}.pub`, 'utf8')
      const info = fingerprint(pub)
      if (!info) throw new Error(`ssh-keygen wrote an unreadable ${name}.pub`)
      const publicKey = pub.trim().split(/\s+/).slice(0, 2).join(' ')
      return {name, local, info: {file: `/etc/ssh/${name}.pub`, ...info, publicKey}}
    }))
    return {dir, keys}
  } catch (error) {
    // Cancelled or failed: nobody else knows the folder, so it goes now.
    await rm(dir, {recursive: true, force: true})
    throw error
  }
}

export async function replaceHostKeys(g: GuestfishSession, oldNames: string[], generated: GeneratedKeys): Promise<HostKeyChange> {
  const old: HostKeyInfo[] = []
  for (const name of oldNames) {
    const path = `/etc/ssh/${name}`
    const st = await g.stat(path)
    const info = name.endsWith('.pub') && st?.kind === 'file' && st.size < MAX_TEXT_BYTES ? fingerprint((await g.readFile(path)).toString('latin1')) : undefined
    if (info) old.push({file: path, ...info})
    // A file or a link is unlinked, never followed; only a directory needs `rm -rf` (a helper program, 50 ms under TCG).
    if (st?.kind === 'dir') await g.call('rm-rf', path)
    else if (st) await g.call('rm', path)
  }
  await Promise.all(generated.keys.flatMap((key) => [
    // sshd refuses a private host key that group or others can read.
    writeKey(g, key.local, `/etc/ssh/${key.name}`, 0o600),
    writeKey(g, `${key.local}.pub`, `/etc/ssh/${key.name}.pub`, 0o644),
  ]))
  return {old, new: generated.keys.map((k) => k.info)}
}

async function writeKey(g: GuestfishSession, local: string, path: string, mode: number): Promise<void> {
  await g.writeFile(path, await readFile(local))
  await setOwnerMode(g, path, 0, 0, mode)
}
