import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {mkdtemp, rm, stat} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {badInput} from '../../errors.js'
import {inspectBox, type BoxInfo} from '../inspect.js'
import {convertToQcow2, extractDisk, libvirtVagrantfile, packLibvirtBox, type LibvirtMetadata} from './libvirt-box.js'
import type {PublishEvent} from './events.js'

/** A file ready on this machine to go to the destination. */
export interface LocalFile {
  path: string
  bytes: number
  sha256: string
}

/** Everything a publish sends, made before the destination is touched. */
export interface PreparedFiles {
  virtualbox: LocalFile
  libvirt?: LocalFile & {metadata: LibvirtMetadata}
  base?: LocalFile
  warnings: string[]
  /** Removes the work folder. */
  cleanup(): Promise<void>
}

type Emit = (event: PublishEvent) => void

/**
 * Checks that the box is a VirtualBox box through and through: the intake checks of
 * `shien box inspect`, and a metadata.json that says so.
 */
export async function inspectForPublish(box: string, libvirt: boolean, signal?: AbortSignal): Promise<BoxInfo> {
  const info = await inspectBox(box, {signal})
  if (!info.metadata) {
    throw badInput('BOX_NO_METADATA', `${box} has no metadata.json, so Vagrant would refuse it.`, ['Package the box with "vagrant package", which writes metadata.json.'])
  }
  if (info.provider !== 'virtualbox') {
    throw badInput('BOX_PROVIDER_MISMATCH', `metadata.json in ${box} names the provider "${info.provider ?? '(none)'}", but the box holds a VirtualBox machine (${info.ovfEntry} and ${info.disks.map((d) => d.entry).join(', ')}).`, [
      'Set "provider": "virtualbox" in metadata.json, or publish the box it was made from.',
    ])
  }
  if (libvirt && info.disks.length !== 1) {
    throw badInput('BOX_MULTIPLE_DISKS', `${box} has ${info.disks.length} disks; shien converts boxes with one disk for libvirt.`, ['Publish it with --no-libvirt, for VirtualBox only.'])
  }
  return info
}

/** Hashes the VirtualBox box and, unless told not to, converts it into a libvirt box and qcow2. */
export async function prepareFiles(info: BoxInfo, opts: {libvirt: boolean; signal?: AbortSignal; emit: Emit}): Promise<PreparedFiles> {
  const work = await mkdtemp(join(tmpdir(), 'shien-publish-'))
  const cleanup = () => rm(work, {recursive: true, force: true})
  try {
    const warnings = [...info.warnings]
    if (info.privateKeys.length > 0) warnings.push(`The box holds ${info.privateKeys.join(', ')}: every student gets the same key, as with Vagrant's insecure key.`)
    opts.emit({type: 'step:start', step: 'checksum'})
    const virtualbox = await hashFile(info.path, opts)
    const files: PreparedFiles = {virtualbox, warnings, cleanup}
    if (opts.libvirt) Object.assign(files, await convert(info, work, opts))
    return files
  } catch (error) {
    await cleanup()
    throw error
  }
}

async function convert(info: BoxInfo, work: string, opts: {signal?: AbortSignal; emit: Emit}): Promise<Pick<PreparedFiles, 'libvirt' | 'base'>> {
  opts.emit({type: 'step:start', step: 'convert'})
  const vmdk = join(work, 'disk.vmdk')
  const base = join(work, 'box.img')
  const {vagrantfile} = await extractDisk(info.path, info.disks[0].entry, vmdk, opts.signal)
  const metadata = await convertToQcow2(vmdk, base, {
    signal: opts.signal,
    onProgress: (percent) => opts.emit({type: 'progress', step: 'convert', done: percent, total: 100}),
  })
  await rm(vmdk)
  const libvirtPath = join(work, 'libvirt.box')
  const sha256 = await packLibvirtBox(base, metadata, libvirtVagrantfile(vagrantfile), libvirtPath, opts.signal)
  return {
    libvirt: {path: libvirtPath, bytes: (await stat(libvirtPath)).size, sha256, metadata},
    base: await hashFile(base, {signal: opts.signal}),
  }
}

async function hashFile(path: string, opts: {signal?: AbortSignal; emit?: Emit}): Promise<LocalFile> {
  const total = (await stat(path)).size
  const hash = createHash('sha256')
  let done = 0
  for await (const chunk of createReadStream(path, {signal: opts.signal, highWaterMark: 1024 * 1024})) {
    hash.update(chunk as Buffer)
    done += (chunk as Buffer).length
    opts.emit?.({type: 'progress', step: 'checksum', done, total})
  }
  return {path, bytes: total, sha256: hash.digest('hex')}
}
