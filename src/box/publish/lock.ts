import {hostname, userInfo} from 'node:os'

import {badInput, ShienError} from '../../errors.js'
import type {NewHostKey} from '../../transport/connect.js'
import {CATALOG_SIZE_LIMIT, parseCatalog, type Catalog} from '../catalog.js'
import {LocalTarget} from './local-target.js'
import type {PublishDestination} from './plan.js'
import {SftpTarget} from './sftp-target.js'
import type {PublishTarget} from './target.js'
import type {AskPassphrase} from '../../transport/ssh-auth.js'

// What publish and unpublish share before they change anything: the destination opened, the
// catalog's lock taken, the catalog read and checked.

/** How a destination is reached: the host key check of an sftp:// one, and the agent. */
export interface DestinationAccess {
  confirmHostKey: (key: NewHostKey) => Promise<boolean>
  agentSocket?: string
  /** Asks a key file's passphrase on a terminal. */
  askPassphrase?: AskPassphrase
  signal?: AbortSignal
}

/** Opens a folder here, or one over SFTP (its host key checked against known_hosts). */
export async function openDestination(destination: PublishDestination, access: DestinationAccess): Promise<PublishTarget> {
  if (destination.kind === 'local') return new LocalTarget()
  return SftpTarget.open({
    target: destination.target,
    confirmNewHostKey: access.confirmHostKey,
    agentSocket: access.agentSocket,
    askPassphrase: access.askPassphrase,
    signal: access.signal,
  })
}

/**
 * One publish or unpublish per catalog at a time, or the second one's change would be lost.
 * The lock file names who holds it, for the message the next one prints.
 */
export async function takeLock(target: PublishTarget, lock: string, command: 'publish' | 'unpublish'): Promise<void> {
  const owner = JSON.stringify({command, user: userInfo().username, host: hostname(), pid: process.pid, since: new Date().toISOString()})
  if (!(await target.createExclusive(lock, owner + '\n'))) {
    const holder = await target.readText(lock, 4096).catch(() => undefined)
    throw new ShienError(`Another publish or unpublish of this catalog holds ${lock} on ${target.label}${holder ? ` (${holder.trim()})` : ''}.`, {
      code: 'PUBLISH_LOCKED', exit: 'refused',
      suggestions: ['Wait for it to finish. If none is running (it was killed), remove the lock file and try again.'],
    })
  }
}

/** Removes the lock (when one was taken), then closes the destination, whatever happened. */
export async function release(target: PublishTarget | undefined, lock: string | undefined): Promise<void> {
  try {
    if (lock !== undefined) await target?.remove(lock)
  } finally {
    await target?.close()
  }
}

/** The catalog at `path`, checked to be the catalog of `name`; undefined when there is none. */
export async function readCatalog(target: PublishTarget, path: string, name: string): Promise<Catalog | undefined> {
  const text = await target.readText(path, CATALOG_SIZE_LIMIT)
  if (text === undefined) return undefined
  if (text.length > CATALOG_SIZE_LIMIT) throw badInput('CATALOG_TOO_LARGE', `${path} is larger than Vagrant reads (${CATALOG_SIZE_LIMIT} bytes).`)
  const catalog = parseCatalog(text, path)
  if (catalog.name !== name) {
    throw badInput('CATALOG_NAME_MISMATCH', `${path} is the catalog of "${catalog.name}", not "${name}".`, [
      `Use --name ${catalog.name}, or choose another name.`,
    ])
  }
  return catalog
}
