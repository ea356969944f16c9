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
      const info = fingerprint(await readFile(`${local}.pub`, 'utf8'))
      if (!info) throw new Error(`ssh-keygen wrote an unreadable ${name}.pub`)
      return {name, local, info: {file: `/etc/ssh/${name}.pub`, ...info}}
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
  for (const name of oldNames.filter((n) => n.endsWith('.pub'))) {
    const path = `/etc/ssh/${name}`
    const st = await g.stat(path)
    const info = st?.kind === 'file' && st.size < MAX_TEXT_BYTES ? fingerprint((await g.readFile(path)).toString('latin1')) : undefined
    if (info) old.push({file: path, ...info})
  }
  for (const name of oldNames) await g.call('rm-rf', `/etc/ssh/${name}`)
  for (const key of generated.keys) {
    // sshd refuses a private host key that group or others can read.
    await g.call('upload', key.local, `/etc/ssh/${key.name}`)
    await setOwnerMode(g, `/etc/ssh/${key.name}`, 0, 0, 0o600)
    await g.call('upload', `${key.local}.pub`, `/etc/ssh/${key.name}.pub`)
    await setOwnerMode(g, `/etc/ssh/${key.name}.pub`, 0, 0, 0o644)
  }
  return {old, new: generated.keys.map((k) => k.info)}
}
