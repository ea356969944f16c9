import {stat} from 'node:fs/promises'
import {posix} from 'node:path'
import type {Readable} from 'node:stream'

import {badInput} from '../errors.js'
import {isConfigText, judgeBox, type BoxLayout} from './box-layout.js'
import {readBoxEntries, type BoxEntry, type Compression} from './box-tar.js'
import {readHead} from './entry-head.js'
import type {BoxFiles} from './provider-disks.js'

export type {BoxDisk} from './provider-disks.js'
export type {Provider} from './box-layout.js'

/** Everything `shien box inspect` reports, and what a push plans from. */
export interface BoxInfo extends BoxLayout {
  path: string
  /** Size of the box file in bytes. */
  bytes: number
  compression: Compression
  /** Every entry in archive order (the root `./` left out). */
  entries: BoxEntry[]
  /** The OVF's entry name (normally `box.ovf`), for a VirtualBox box. */
  ovfEntry: string | undefined
  hasVagrantfile: boolean
  /** Entries called `vagrant_private_key` (at any depth): never uploaded. */
  privateKeys: string[]
}

/** Options for {@link inspectBox}. */
export interface InspectOptions {
  signal?: AbortSignal
}

const TEXT_LIMIT = 4 * 1024 * 1024
const METADATA_LIMIT = 1024 * 1024
const PRIVATE_KEY = 'vagrant_private_key'
const REPACKAGE = ['Package the box again with "vagrant package --output my.box" and inspect that file.']

/** What the single streaming pass collects before anything is judged. */
interface Collected extends BoxFiles {
  metadataText: string | undefined
  hasVagrantfile: boolean
  privateKeys: string[]
}

/**
 * Reads a box once, start to end, and checks it: safe entries, a machine of a provider shien
 * takes (VirtualBox, VMware, Parallels, libvirt or qemu) whose disks are all in the box and each
 * pass their format's gate, and one declared architecture. Throws a `badInput` ShienError
 * naming the problem.
 */
export async function inspectBox(path: string, opts: InspectOptions = {}): Promise<BoxInfo> {
  const collected: Collected = {entries: [], texts: new Map(), metadataText: undefined, hasVagrantfile: false, privateKeys: [], heads: new Map()}
  // The configuration usually comes after the disks (bsdtar sorts box.ovf after box-disk001.vmdk),
  // so the head of every other file is kept and the gates run once the configuration says which are disks.
  const {compression} = await readBoxEntries(path, {signal: opts.signal, onEntry: (entry, body) => collect(collected, entry, body)})
  const layout = judgeBox(collected, parseMetadata(collected.metadataText))
  return {
    path,
    bytes: (await stat(path)).size,
    compression,
    entries: collected.entries,
    ovfEntry: layout.provider === 'virtualbox' ? layout.configEntry : undefined,
    hasVagrantfile: collected.hasVagrantfile,
    privateKeys: collected.privateKeys,
    ...layout,
  }
}

async function collect(c: Collected, entry: BoxEntry, body: Readable): Promise<void> {
  c.entries.push(entry)
  if (entry.type !== 'file') return
  const base = posix.basename(entry.name)
  if (base === PRIVATE_KEY) {
    c.privateKeys.push(entry.name)
  } else if (isConfigText(entry.name)) {
    c.texts.set(entry.name, await readText(body, entry, TEXT_LIMIT))
  } else if (entry.name === 'metadata.json') {
    c.metadataText = await readText(body, entry, METADATA_LIMIT)
  } else {
    if (entry.name === 'Vagrantfile') c.hasVagrantfile = true
    c.heads.set(entry.name, await readHead(body))
  }
}

async function readText(body: Readable, entry: BoxEntry, limit: number): Promise<string> {
  if (entry.size > limit) {
    throw badInput('BOX_ENTRY_TOO_LARGE', `${entry.name} in the box is ${entry.size} bytes; shien reads at most ${limit} bytes of it.`, REPACKAGE)
  }
  const chunks: Buffer[] = []
  for await (const chunk of body) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

/** `metadata.json` as an object, or undefined when the box has none; anything else is refused. */
export function parseMetadata(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    throw badInput('BOX_BAD_METADATA', `metadata.json in the box is not valid JSON (${(error as Error).message}).`, REPACKAGE)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badInput('BOX_BAD_METADATA', 'metadata.json in the box is not a JSON object such as {"provider": "virtualbox"}.', REPACKAGE)
  }
  return value as Record<string, unknown>
}
