import {lstat, mkdir, mkdtemp, rename, rm} from 'node:fs/promises'
import {join} from 'node:path'

import {manifestOfImage} from '../delta/image-manifest.js'
import {type DeltaHeader, readDelta} from '../delta/delta-file.js'
import {badInput, ShienError} from '../errors.js'
import {emitBladeEvent} from '../protocol/blade-events.js'
import type {ConvertResult} from '../protocol/blade-steps.js'
import {QemuImgError, qemuImgCreateOverlay} from '../qemu-img/qemu-img.js'
import {type BaseBox, type BaseCheckOptions, checkBaseUnchanged, findBase} from './base-box.js'
import {baseManifest} from './base-manifest.js'
import type {BladeContext} from './caller.js'
import {checkSlotName} from './convert.js'
import {writeDeltaRecords} from './delta-writes.js'
import {incomingPaths, sha256File} from './incoming.js'
import {type DeclaredPlatform, stagedImage, stagedRecord, writeStagedRecord} from './slot-files.js'

export interface ApplyDeltaRequest {
  /** The upload's name: `incoming/<name>.delta`. */
  name: string
  slot: string
  /** The catalog box and version the delta was made against. */
  box: string
  version: string
  /** sha256 of the delta file as the laptop sent it. */
  sha256?: string
  /** The box's architecture (Vagrant's name): the base is that architecture's; amd64 when not given. */
  architecture?: string
  /** Where the box declares its architecture, for harden's check against the disk; only with `architecture`. */
  architectureSource?: string
  /** The firmware the box declares; the base's otherwise. */
  firmware?: 'bios' | 'efi'
}

/**
 * Turns an uploaded delta into `images/.<slot>.new.qcow2`: a qcow2 overlay of the published
 * base (backing format declared) with the delta's blocks written through qemu's block layer,
 * accepted only when the whole virtual disk, read through the base, has the hash the laptop
 * computed. The base is only read. The slot's current image is not touched; on any failure
 * the half-made overlay and the work files are removed, as after a failed convert.
 */
export async function applyDelta(ctx: BladeContext, req: ApplyDeltaRequest, o: BaseCheckOptions = {}): Promise<ConvertResult> {
  const {signal} = o
  checkSlotName(req.slot)
  const {box: deltaPath} = incomingPaths(ctx, req.name, 'delta')
  const source = `${req.name}.delta`
  const stats = await lstat(deltaPath).catch(() => undefined)
  if (!stats?.isFile()) throw badInput('DELTA_NOT_UPLOADED', `${deltaPath} is not on the blade.`, ['Run shien push again: it uploads the delta first.'])
  if (req.sha256 !== undefined) await checkUpload(deltaPath, req.sha256)
  const base = await availableBase(ctx, req, o)
  const {manifest} = await baseManifest(ctx, base, o)
  const {header, records} = await readDelta(deltaPath, source)
  try {
    checkAgainstBase(header, base, manifest.diskHash, source)
  } catch (error) {
    // Started and stopped, so the generator closes the delta file.
    await records.next().catch(() => undefined)
    await records.return(undefined)
    throw error
  }
  await mkdir(ctx.paths.images, {recursive: true, mode: 0o700})
  const target = stagedImage(ctx, req.slot)
  const partial = `${target}.part`
  const work = await mkdtemp(join(ctx.paths.incoming, `.${req.name}.apply-`))
  await rm(stagedRecord(ctx, req.slot), {force: true})
  try {
    await rm(partial, {force: true})
    await qemuImgCreateOverlay({path: partial, backing: base.path, size: header.virtualSize, signal}).catch(failed('create the overlay'))
    emitBladeEvent({type: 'note', message: `writing the blocks of ${source} over ${req.box} ${req.version}`})
    const written = await writeDeltaRecords(partial, header.virtualSize, records, {work, signal}).catch(failed('write the blocks'))
    emitBladeEvent({type: 'note', message: `checking the new disk (${written.blocks} blocks written)`})
    const result = await manifestOfImage(partial, {format: 'qcow2', backing: base.path, tmpDir: work, signal}).catch(failed('read the new disk back'))
    if (!result.diskHash.equals(header.newDiskHash)) {
      throw badInput('DELTA_HASH_MISMATCH', `The disk made from ${source} on ${req.box} ${req.version} has hash ${result.diskHash.toString('hex')}, not the ${header.newDiskHash.toString('hex')} the laptop computed.`, [
        'Push again with --full to send the whole box.',
      ])
    }
    await checkBaseUnchanged(base)
    await writeStagedRecord(ctx, req.slot, {slot: req.slot, base: baseRecord(base, manifest.diskHash), ...declaredFor(req, base)})
    await rename(partial, target)
    return {image: target, disk: source, virtualSize: header.virtualSize, ignoredDisks: []}
  } catch (error) {
    await rm(partial, {force: true})
    await rm(target, {force: true})
    await rm(stagedRecord(ctx, req.slot), {force: true})
    throw error
  } finally {
    await rm(work, {recursive: true, force: true})
  }
}

/**
 * What the overlay was made on, kept in the slot's record (`images/<slot>.json`) so `shien audit`
 * can tell when the base changed under it: the file's identity as it was read, and its disk hash.
 */
export interface BaseRecord {
  box: string
  version: string
  path: string
  diskHash: string
  dev: string
  ino: string
  size: string
  mtimeNs: string
  ctimeNs: string
}

function baseRecord(base: BaseBox, diskHash: Buffer): BaseRecord {
  const s = base.stat
  return {
    box: base.box, version: base.version, path: base.path, diskHash: diskHash.toString('hex'),
    dev: String(s.dev), ino: String(s.ino), size: String(s.size), mtimeNs: String(s.mtimeNs), ctimeNs: String(s.ctimeNs),
  }
}

/**
 * What the staged record declares for harden and ie-virsh, as convert records a box's own: the
 * architecture the box declares and where, and its firmware, else the base's (an overlay of a
 * UEFI base boots with UEFI). Nothing declared is BIOS, as for a converted box.
 */
function declaredFor(req: ApplyDeltaRequest, base: BaseBox): DeclaredPlatform {
  const firmware = req.firmware ?? base.firmware
  return {
    ...(req.architecture !== undefined && req.architectureSource !== undefined ? {declaredArchitecture: {architecture: req.architecture, source: req.architectureSource}} : {}),
    ...(firmware ? {firmware} : {}),
  }
}

async function checkUpload(path: string, sha256: string): Promise<void> {
  const digest = await sha256File(path)
  if (digest !== sha256.toLowerCase()) {
    throw new ShienError(`The delta on the blade (sha256 ${digest}) is not the one that was sent (${sha256}).`, {
      code: 'UPLOAD_CORRUPT', exit: 'remote', suggestions: [`Remove ${path} on the blade and push again.`],
    })
  }
}

async function availableBase(ctx: BladeContext, req: ApplyDeltaRequest, o: BaseCheckOptions): Promise<BaseBox> {
  const found = await findBase(ctx, req.box, req.version, {...o, architecture: req.architecture})
  if (found.available) return found.base
  throw new ShienError(`Cannot apply a delta against ${req.box} ${req.version}: ${found.reason}.`, {
    code: 'BASE_UNAVAILABLE', exit: 'refused', suggestions: ['Push with --full to send the whole box.'],
  })
}

/** A delta made against another base (another version, or a republished one) is refused. */
function checkAgainstBase(header: DeltaHeader, base: BaseBox, baseHash: Buffer, source: string): void {
  if (!header.baseDiskHash.equals(baseHash)) {
    throw badInput('DELTA_WRONG_BASE', `${source} was made against a base with disk hash ${header.baseDiskHash.toString('hex')}, but ${base.box} ${base.version} on this blade has ${baseHash.toString('hex')}: it was made for another version.`, [
      `Check the project's box version (vagrant box list), or push with --full.`,
    ])
  }
  if (header.virtualSize < base.virtualSize) {
    throw badInput('DELTA_SIZE', `${source} describes a disk of ${header.virtualSize} bytes, smaller than the ${base.virtualSize}-byte base it was made on.`, ['Push with --full.'])
  }
}

/** qemu-img and qemu-io failures, as the student reads them. */
function failed(what: string) {
  return (error: unknown): never => {
    if (!(error instanceof QemuImgError)) throw error
    const full = error.failure === 'disk-full'
    throw new ShienError(`Could not ${what} for the delta push: ${error.line}`, {
      code: full ? 'BLADE_DISK_FULL' : 'APPLY_DELTA_FAILED',
      exit: 'remote',
      suggestions: full ? ['Free space in your blade directory or ask an admin for more.'] : ['Push again with --full to send the whole box.'],
    })
  }
}
