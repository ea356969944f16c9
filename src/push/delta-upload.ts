import {existsSync, statSync} from 'node:fs'
import {mkdtemp, readFile, rename, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {type DeltaStats, writeBoxDelta} from '../box/box-delta.js'
import type {BoxLayout} from '../box/box-layout.js'
import {boxPayload, type BoxPayload} from '../box/payload.js'
import {type BlockManifest, parseManifest} from '../delta/manifest.js'
import {isShienError} from '../errors.js'
import {need} from '../pipeline/outputs.js'
import type {StageIO} from '../pipeline/runner.js'
import type {DeltaPlatform, DeltaSent, PushContext} from './context.js'
import {keptPaths, type KeptPaths, removeKeptDelta} from './kept-box.js'

/** What the upload stage sends: the whole box, or a delta against a base the blade has. */
export type UploadChoice =
  | {kind: 'box'; payload: BoxPayload; size: number; wholeBox?: string}
  | {kind: 'delta'; path: string; size: number; delta: DeltaSent}

/**
 * Decides between a delta and the whole box (docs/delta.md, "On the laptop: a delta push"):
 * asks the blade for the base's manifest, then makes the delta of the box's boot disk, or takes
 * the one kept from an earlier run of the same box. Every reason to send the whole box is one
 * note line; the push goes on with the whole box.
 */
export async function chooseUpload(ctx: PushContext, io: StageIO): Promise<UploadChoice> {
  const {plan} = ctx
  const {boxPath, box} = need(ctx.out, 'package')
  const payload = boxPayload(boxPath, box)
  const boxSize = await payload.size()
  const whole = (reason?: string): UploadChoice => {
    if (reason) io.emit({type: 'note', stage: 'upload', message: `sending the whole box: ${reason}`})
    return {kind: 'box', payload, size: boxSize, wholeBox: reason}
  }
  const choice = plan.base
  if (choice.kind === 'full') return whole()
  if (choice.kind === 'none') return whole(choice.reason)
  const label = `${choice.box} ${choice.version}`
  const disk = box.disks[0]
  if (disk.subformat !== 'streamOptimized') {
    return whole(`the box's disk is ${disk.format === disk.subformat ? disk.format : `${disk.format} ${disk.subformat}`}; a delta is read from a streamOptimized VMDK, which vagrant package writes for VirtualBox`)
  }
  const asked = await askBase(ctx, choice.box, choice.version, box, io)
  if (typeof asked === 'string') return whole(asked)
  const {manifest: base, platform} = asked
  if (disk.capacityBytes !== base.virtualSize) {
    return whole(`the box's disk is ${size(disk.capacityBytes)} and ${label}'s is ${size(base.virtualSize)}; a delta needs the same size`)
  }
  const paths = await deltaPaths(ctx)
  const stats = await deltaOf(paths, boxPath, choice, base, ctx, io)
  if (stats.bytes >= boxSize) {
    return whole(`the delta against ${label} (${size(stats.bytes)}) would be no smaller than the box (${size(boxSize)})`)
  }
  const {bytes, changedBlocks, zeroedBlocks, virtualSize, reused} = stats
  io.emit({type: 'note', stage: 'upload', message: `delta against ${label}: ${size(bytes)} of ${size(virtualSize)} to send (the whole box is ${size(boxSize)})`})
  return {kind: 'delta', path: paths.delta, size: bytes, delta: {box: choice.box, version: choice.version, bytes, changedBlocks, zeroedBlocks, virtualSize, reused, platform}}
}

/**
 * The base's manifest from the blade, checked, with what to tell apply-delta about the box's
 * platform; or why there is none to use. The base asked for is the box's architecture's (the
 * flag is left out for amd64, the default, so blades that know one base per version answer as
 * before); a blade that names no architecture in its answer is one of those, and cannot be told
 * a UEFI box's firmware.
 */
async function askBase(ctx: PushContext, box: string, version: string, pushed: BoxLayout, io: StageIO): Promise<{manifest: BlockManifest; platform?: DeltaPlatform} | string> {
  const label = `${box} ${version}`
  const architecture = pushed.architecture ?? 'amd64'
  let answer
  try {
    answer = await need(ctx.out, 'connect').blade.call('base', {box, version, ...(architecture === 'amd64' ? {} : {architecture})}, {signal: io.signal})
  } catch (error) {
    // A delta only saves time: a blade that cannot tell still takes the whole box.
    if (io.signal.aborted) throw error
    return `the blade could not say whether it has ${label}${architecture === 'amd64' ? '' : ` for ${architecture}`} (${(error as Error).message})`
  }
  if (!answer.available) return answer.reason
  if (answer.box !== box || answer.version !== version) return `the blade answered with ${answer.box} ${answer.version} when asked for ${label}`
  if (answer.architecture !== undefined && answer.architecture !== architecture) {
    return `the blade answered with the ${answer.architecture} base of ${label} when asked for the ${architecture} one`
  }
  if (answer.architecture === undefined && pushed.firmware === 'efi') return `the blade is too old to record a delta push's UEFI firmware`
  let manifest: BlockManifest
  try {
    manifest = parseManifest(Buffer.from(answer.manifest, 'base64'), `the blade's manifest of ${label}`)
  } catch (error) {
    if (isShienError(error)) return error.message.replace(/\.$/, '')
    throw error
  }
  if (manifest.diskHash.toString('hex') !== answer.diskHash.toLowerCase() || manifest.virtualSize !== answer.virtualSize) {
    return `the blade's manifest of ${label} does not match the disk it describes`
  }
  if (answer.architecture === undefined) return {manifest}
  // The declared architecture also picks apply-delta's base: the one asked for here.
  const claim = pushed.architectureClaims[0]
  return {
    manifest,
    platform: {
      ...(pushed.architecture && claim ? {architecture: pushed.architecture, architectureSource: claim.source} : {}),
      ...(pushed.firmware ? {firmware: pushed.firmware} : {}),
    },
  }
}

/** Beside the kept box in the project; in a folder of its own for a named box file. */
async function deltaPaths(ctx: PushContext): Promise<KeptPaths> {
  const {keepDir, name} = ctx.plan
  if (keepDir) return keptPaths(keepDir, name)
  ctx.made.tempDir ??= await mkdtemp(join(tmpdir(), 'shien-delta-'))
  return keptPaths(ctx.made.tempDir, name)
}

/** What a delta was made from, written beside it: the next run takes it only if all of it still holds. */
interface DeltaRecordFile {
  box: {size: number; mtimeMs: number}
  base: {box: string; version: string; diskHash: string}
  stats: {bytes: number; changedBlocks: number; zeroedBlocks: number; virtualSize: number; newDiskHash: string}
}

async function deltaOf(
  paths: KeptPaths, boxPath: string, base: {box: string; version: string}, manifest: BlockManifest, ctx: PushContext, io: StageIO,
): Promise<DeltaStats & {reused: boolean}> {
  const {size: boxSize, mtimeMs} = statSync(boxPath)
  const made: DeltaRecordFile['box'] & DeltaRecordFile['base'] = {size: boxSize, mtimeMs, ...base, diskHash: manifest.diskHash.toString('hex')}
  const kept = await keptDelta(paths, made)
  if (kept) {
    io.emit({type: 'note', stage: 'upload', message: 'reusing the delta made for this box by a push that did not finish'})
    return {...kept, reused: true}
  }
  await removeKeptDelta(paths)
  const stats = await writeBoxDelta(boxPath, need(ctx.out, 'package').box.disks[0], manifest, paths.deltaPart, {
    signal: io.signal,
    onProgress: (bytes, total) => io.emit({type: 'progress', stage: 'delta', bytes, total}),
  })
  await rename(paths.deltaPart, paths.delta)
  const record: DeltaRecordFile = {
    box: {size: boxSize, mtimeMs},
    base: {box: base.box, version: base.version, diskHash: made.diskHash},
    stats: {...stats, newDiskHash: stats.newDiskHash.toString('hex')},
  }
  await writeFile(paths.deltaInfo, JSON.stringify(record) + '\n')
  return {...stats, reused: false}
}

async function keptDelta(paths: KeptPaths, made: {size: number; mtimeMs: number; box: string; version: string; diskHash: string}): Promise<DeltaStats | undefined> {
  if (!existsSync(paths.delta) || !existsSync(paths.deltaInfo)) return undefined
  let record: DeltaRecordFile
  try {
    record = JSON.parse(await readFile(paths.deltaInfo, 'utf8')) as DeltaRecordFile
  } catch {
    return undefined
  }
  const same = record.box?.size === made.size && record.box.mtimeMs === made.mtimeMs &&
    record.base?.box === made.box && record.base.version === made.version && record.base.diskHash === made.diskHash &&
    statSync(paths.delta).size === record.stats?.bytes
  return same ? {...record.stats, newDiskHash: Buffer.from(record.stats.newDiskHash, 'hex')} : undefined
}

/** 84 MiB, 2.0 GiB: how much, for one line. */
export function size(bytes: number): string {
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(1)} GiB`
  if (bytes >= 2 ** 20) return `${Math.round(bytes / 2 ** 20)} MiB`
  return `${Math.max(1, Math.round(bytes / 2 ** 10))} KiB`
}
