import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {mkdtemp, rm, stat, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {manifestOfImage} from '../../delta/image-manifest.js'
import {encodeManifest} from '../../delta/manifest.js'
import {basePlatformOf, formatBasePlatform} from '../../delta/base-platform.js'
import {badInput} from '../../errors.js'
import {need} from '../../pipeline/outputs.js'
import {architectureNamed} from '../architecture.js'
import {inspectBox, type BoxInfo} from '../inspect.js'
import type {LocalFile, PublishStage} from './context.js'
import {convertToQcow2, extractDisk, libvirtVagrantfile, packLibvirtBox} from './libvirt-box.js'
import {architectureFiles} from './plan.js'
import {withUpgradeMetadata} from './upgrade-metadata.js'

/**
 * Checks that the box is a VirtualBox box through and through: the intake checks of
 * `shien box inspect` (which also refuse a metadata.json naming another provider). A box of
 * Vagrant's oldest format, without metadata.json, is published with the one Vagrant's own
 * upgrade of it writes.
 */
async function inspectForPublish(box: string, libvirt: boolean, architecture: string | undefined, signal?: AbortSignal): Promise<BoxInfo> {
  const info = await inspectBox(box, {signal})
  if (architecture !== undefined && architecture !== 'unknown' && info.architecture !== undefined && architectureNamed(architecture) !== info.architecture) {
    throw badInput('BOX_ARCH_CONFLICT', `--architecture ${architecture} does not match the box: ${info.architectureClaims.map((c) => c.source).join(' and ')} say${info.architectureClaims.length === 1 ? 's' : ''} ${info.architecture}.`, [
      `Leave out --architecture (the box's own, ${info.architecture}, is used), or publish the box made for ${architecture}.`,
    ])
  }
  if (info.provider !== 'virtualbox') {
    throw badInput('PUBLISH_PROVIDER_UNSUPPORTED', `${box} is a ${info.provider} box; shien box publish publishes VirtualBox boxes (and makes their libvirt box itself).`, [
      'Publish the VirtualBox box of the same machine, made with "vagrant package" in a VirtualBox project.',
    ])
  }
  if (libvirt && info.disks.length !== 1) {
    throw badInput('BOX_MULTIPLE_DISKS', `${box} has ${info.disks.length} disks; shien converts boxes with one disk for libvirt.`, ['Publish it with --no-libvirt, for VirtualBox only.'])
  }
  return info
}

export const inspectStage: PublishStage = {
  id: 'inspect',
  label: 'Checking the box',
  detail: (ctx) => ctx.plan.box,
  async run(ctx, io) {
    const {plan} = ctx
    const info = await inspectForPublish(plan.box, plan.libvirt, plan.architecture, io.signal)
    const architecture = plan.architecture ?? info.architecture ?? 'amd64'
    ctx.out.inspect = {info, architecture, files: architectureFiles(plan, architecture)}
  },
}

/** Hashes the VirtualBox box as it is (or with the metadata.json it lacked); the work folder it makes is for the boxes it writes. */
export const checksumStage: PublishStage = {
  id: 'checksum',
  label: 'Computing sha256',
  async run(ctx, io) {
    const {info} = need(ctx.out, 'inspect')
    ctx.made.workDir = await mkdtemp(join(tmpdir(), 'shien-publish-'))
    const warnings = info.warnings.filter((w) => info.metadata || !w.includes('no metadata.json'))
    if (info.privateKeys.length > 0) warnings.push(`The box holds ${info.privateKeys.join(', ')}: every student gets the same key, as with Vagrant's insecure key.`)
    let boxPath = info.path
    if (!info.metadata) {
      boxPath = join(ctx.made.workDir, 'virtualbox.box')
      await withUpgradeMetadata(info, boxPath, io.signal)
      warnings.push(`${info.path} has no metadata.json (Vagrant's oldest box format): the published box has the one Vagrant's upgrade writes, {"provider":"virtualbox"}.`)
    }
    const virtualbox = await hashFile(boxPath, io.signal, (done, total) => io.emit({type: 'progress', stage: 'checksum', bytes: done, total}))
    ctx.out.checksum = {virtualbox, warnings}
  },
  async cleanup(ctx) {
    if (ctx.made.workDir) await rm(ctx.made.workDir, {recursive: true, force: true})
  },
}

/**
 * Converts the box into a libvirt box and the qcow2 the blades base students' images on, and
 * computes that qcow2's block manifest (`libvirt.manifest`, docs/delta.md) for delta pushes,
 * and writes what it boots as (`libvirt.platform.json`): a delta push's overlay boots the same.
 */
export const convertStage: PublishStage = {
  id: 'convert',
  label: 'Converting for libvirt (qcow2)',
  async run(ctx, io) {
    const {info, architecture} = need(ctx.out, 'inspect')
    const work = need(ctx.made, 'workDir')
    const vmdk = join(work, 'disk.vmdk')
    const base = join(work, 'box.img')
    const {vagrantfile} = await extractDisk(info.path, info.disks[0].entry, vmdk, io.signal)
    const metadata = await convertToQcow2(vmdk, base, {
      signal: io.signal,
      onProgress: (percent) => io.emit({type: 'progress', stage: 'convert', bytes: percent, total: 100, unit: 'percent'}),
    })
    await rm(vmdk)
    const libvirtPath = join(work, 'libvirt.box')
    const sha256 = await packLibvirtBox(base, metadata, libvirtVagrantfile(vagrantfile), libvirtPath, io.signal)
    io.emit({type: 'note', stage: 'convert', message: 'computing the block manifest of the base'})
    const manifestPath = join(work, 'libvirt.manifest')
    await writeFile(manifestPath, encodeManifest(await manifestOfImage(base, {format: 'qcow2', env: 'user', tmpDir: work, signal: io.signal})), {mode: 0o600})
    const platformPath = join(work, 'libvirt.platform.json')
    await writeFile(platformPath, formatBasePlatform(basePlatformOf(architecture, info.firmware)), {mode: 0o600})
    ctx.out.convert = {
      libvirt: {path: libvirtPath, bytes: (await stat(libvirtPath)).size, sha256, metadata},
      base: await hashFile(base, io.signal),
      manifest: await hashFile(manifestPath, io.signal),
      platform: await hashFile(platformPath, io.signal),
    }
  },
}

async function hashFile(path: string, signal: AbortSignal, onProgress?: (done: number, total: number) => void): Promise<LocalFile> {
  const total = (await stat(path)).size
  const hash = createHash('sha256')
  let done = 0
  for await (const chunk of createReadStream(path, {signal, highWaterMark: 1024 * 1024})) {
    hash.update(chunk as Buffer)
    done += (chunk as Buffer).length
    onProgress?.(done, total)
  }
  return {path, bytes: total, sha256: hash.digest('hex')}
}
