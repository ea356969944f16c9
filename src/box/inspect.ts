import {stat} from 'node:fs/promises'
import {posix} from 'node:path'
import type {Readable} from 'node:stream'

import {badInput} from '../errors.js'
import {readBoxEntries, type BoxEntry, type Compression} from './box-tar.js'
import {parseOvf, type OvfDisk, type OvfInfo} from './ovf.js'
import {checkVmdkHeader, readVmdkHead, type VmdkInfo} from './vmdk-gate.js'

/** A disk of the box: where the OVF puts it, its tar entry, and what the VMDK gate found. */
export interface BoxDisk extends OvfDisk {
  /** Name of the disk's entry in the box. */
  entry: string
  vmdk: VmdkInfo
}

/** Everything `shien box inspect` reports, and what a push plans from. */
export interface BoxInfo {
  path: string
  /** Size of the box file in bytes. */
  bytes: number
  compression: Compression
  /** Every entry in archive order (the root `./` left out). */
  entries: BoxEntry[]
  /** The OVF's entry name, normally `box.ovf`. */
  ovfEntry: string
  ovf: OvfInfo
  /** `metadata.json` as written, when the box has one. */
  metadata: Record<string, unknown> | undefined
  /** `metadata.json`'s provider, e.g. `virtualbox`. */
  provider: string | undefined
  hasVagrantfile: boolean
  /** Entries called `vagrant_private_key` (at any depth): never uploaded. */
  privateKeys: string[]
  disks: BoxDisk[]
  /** Things that do not stop a push but that the student should know. */
  warnings: string[]
}

/** Options for {@link inspectBox}. */
export interface InspectOptions {
  signal?: AbortSignal
}

const OVF_LIMIT = 4 * 1024 * 1024
const METADATA_LIMIT = 1024 * 1024
const PRIVATE_KEY = 'vagrant_private_key'
const REPACKAGE = ['Package the box again with "vagrant package --output my.box" and inspect that file.']

/** What the single streaming pass collects before anything is judged. */
interface Collected {
  entries: BoxEntry[]
  ovfTexts: Map<string, string>
  metadataText: string | undefined
  hasVagrantfile: boolean
  privateKeys: string[]
  heads: Map<string, Buffer>
}

/**
 * Reads a box once, start to end, and checks it: safe entries, one OVF whose disks are all in
 * the box, and every disk a sparse VMDK that reads nothing but itself. Throws a `badInput`
 * ShienError naming the problem.
 */
export async function inspectBox(path: string, opts: InspectOptions = {}): Promise<BoxInfo> {
  const collected: Collected = {entries: [], ovfTexts: new Map(), metadataText: undefined, hasVagrantfile: false, privateKeys: [], heads: new Map()}
  // The OVF usually comes after the disks (bsdtar sorts box.ovf after box-disk001.vmdk), so the
  // head of every other file is kept and the gate runs once the OVF says which are disks.
  const {compression} = await readBoxEntries(path, {signal: opts.signal, onEntry: (entry, body) => collect(collected, entry, body)})
  const ovfEntry = chooseOvf([...collected.ovfTexts.keys()])
  const ovf = parseOvf(collected.ovfTexts.get(ovfEntry) ?? '', ovfEntry)
  if (ovf.disks.length === 0) throw badInput('BOX_NO_DISK', `${ovfEntry} lists no hard disk, so there is nothing to convert.`, REPACKAGE)
  const disks = ovf.disks.map((disk) => checkDisk(disk, ovfEntry, collected))
  const metadata = parseMetadata(collected.metadataText)
  const provider = typeof metadata?.provider === 'string' ? metadata.provider : undefined
  return {
    path,
    bytes: (await stat(path)).size,
    compression,
    entries: collected.entries,
    ovfEntry,
    ovf,
    metadata,
    provider,
    hasVagrantfile: collected.hasVagrantfile,
    privateKeys: collected.privateKeys,
    disks,
    warnings: warningsFor(metadata, provider, disks),
  }
}

async function collect(c: Collected, entry: BoxEntry, body: Readable): Promise<void> {
  c.entries.push(entry)
  if (entry.type !== 'file') return
  const base = posix.basename(entry.name)
  if (base === PRIVATE_KEY) {
    c.privateKeys.push(entry.name)
  } else if (/\.ovf$/i.test(base) && !base.startsWith('._')) {
    // macOS tar adds "._box.ovf" (AppleDouble extended attributes) next to box.ovf.
    c.ovfTexts.set(entry.name, await readText(body, entry, OVF_LIMIT))
  } else if (entry.name === 'metadata.json') {
    c.metadataText = await readText(body, entry, METADATA_LIMIT)
  } else {
    if (entry.name === 'Vagrantfile') c.hasVagrantfile = true
    c.heads.set(entry.name, await readVmdkHead(body))
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

function chooseOvf(names: string[]): string {
  if (names.includes('box.ovf')) return 'box.ovf'
  if (names.length === 1) return names[0]
  if (names.length === 0) {
    throw badInput('BOX_NO_OVF', 'The box has no OVF descriptor (box.ovf), so it is not a VirtualBox box.', [
      'shien takes VirtualBox boxes. Make one with "vagrant package" in your VirtualBox project.',
    ])
  }
  throw badInput('BOX_AMBIGUOUS_OVF', `The box has several OVF descriptors (${names.join(', ')}) and none is box.ovf.`, REPACKAGE)
}

function checkDisk(disk: OvfDisk, ovfEntry: string, c: Collected): BoxDisk {
  const entry = posix.normalize(posix.join(posix.dirname(ovfEntry), disk.file))
  const head = c.heads.get(entry)
  if (!head) {
    const listed = c.entries.some((e) => e.name === entry)
    throw badInput('BOX_MISSING_DISK', listed
      ? `${ovfEntry} names ${entry} as disk "${disk.diskId}", but that entry is not a disk image.`
      : `${ovfEntry} names ${entry} as disk "${disk.diskId}", but the box has no such file.`, REPACKAGE)
  }
  return {...disk, entry, vmdk: checkVmdkHeader(head, posix.basename(entry))}
}

function parseMetadata(text: string | undefined): Record<string, unknown> | undefined {
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

function warningsFor(metadata: Record<string, unknown> | undefined, provider: string | undefined, disks: BoxDisk[]): string[] {
  const warnings: string[] = []
  if (!metadata) warnings.push('The box has no metadata.json; Vagrant will not accept it as a box.')
  else if (provider !== 'virtualbox') warnings.push(`metadata.json says the provider is "${provider ?? '(none)'}", not "virtualbox".`)
  for (const disk of disks) {
    if (disk.capacityBytes !== disk.vmdk.capacityBytes) {
      warnings.push(`${disk.entry}: the OVF says ${disk.capacityBytes} bytes but the VMDK holds ${disk.vmdk.capacityBytes}; the VMDK's size is used.`)
    }
  }
  return warnings
}
