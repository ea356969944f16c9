import {lstat, mkdir, mkdtemp, rename, rm} from 'node:fs/promises'
import {join} from 'node:path'

import {pushSettings} from '../config/blade-config.js'
import {badInput, ShienError} from '../errors.js'
import {QemuImgError, qemuImgConvert, qemuImgInfo} from '../qemu-img/qemu-img.js'
import {parseSlot} from '../names.js'
import {emitBladeEvent} from '../protocol/blade-events.js'
import type {ConvertResult} from '../protocol/blade-steps.js'
import type {BladeContext} from './caller.js'
import {extractBox} from './extract-box.js'
import {incomingPaths} from './incoming.js'
import {declaredPlatform, stagedImage, stagedRecord, writeStagedRecord} from './slot-files.js'

export function checkSlotName(slot: string): string {
  return parseSlot(slot)
}

/**
 * Turns an uploaded box into `images/.<slot>.new.qcow2`: unpack (validated again here), the
 * provider's layout and its disk gates, then qemu-img on the boot disk, its format named. The
 * slot's current image is not touched; on any failure the work files and the half-written image
 * are removed.
 */
export async function convertBox(ctx: BladeContext, name: string, slot: string, opts: {sha256?: string; signal?: AbortSignal} = {}): Promise<ConvertResult> {
  const {signal} = opts
  checkSlotName(slot)
  const {box} = incomingPaths(ctx, name)
  const stats = await lstat(box).catch(() => undefined)
  if (!stats?.isFile()) throw badInput('BOX_NOT_UPLOADED', `${box} is not on the blade.`, ['Run shien push again: it uploads the box first.'])
  await mkdir(ctx.paths.images, {recursive: true, mode: 0o700})
  const workDir = await mkdtemp(join(ctx.paths.incoming, `.${name}.work-`))
  const target = stagedImage(ctx, slot)
  const partial = `${target}.part`
  // A record left by an earlier staged image (an overlay's base) must not describe this one.
  await rm(stagedRecord(ctx, slot), {force: true})
  try {
    emitBladeEvent({type: 'note', message: `unpacking ${name}.box`})
    const {layout, root} = await extractBox(box, workDir, {sha256: opts.sha256, signal})
    const boot = layout.disks[0]
    await rm(partial, {force: true})
    // `-f` always: the gate accepted this format, and qemu-img must not probe it as anything else.
    // The target's cache mode keeps the written image out of the page cache (push.convertCache).
    await qemuImgConvert({
      src: join(root, boot.entry), srcFormat: boot.format, dest: partial, destFormat: 'qcow2', options: ['compat=1.1'], signal,
      cache: {target: pushSettings(ctx.config).convertCache},
      // In bytes of the disk, so the laptop shows MiB and a rate: qemu-img reports only percent.
      onPercent: (percent) => emitBladeEvent({type: 'progress', step: 'convert', done: Math.round((percent / 100) * boot.capacityBytes), total: boot.capacityBytes, unit: 'bytes'}),
    }).catch((error: unknown) => {
      if (!(error instanceof QemuImgError)) throw error
      signal?.throwIfAborted()
      const full = error.failure === 'disk-full'
      throw new ShienError(`qemu-img could not convert the disk: ${error.line}`, {
        code: full ? 'BLADE_DISK_FULL' : 'CONVERT_FAILED',
        exit: 'remote',
        suggestions: full ? ['Free space in your blade directory or ask an admin for more.'] : ['Check the box on your laptop with shien box inspect.'],
      })
    })
    await rename(partial, target)
    // What the box declares, for harden to check against the disk and record for ie-virsh.
    await writeStagedRecord(ctx, slot, {slot, ...declaredPlatform(layout)})
    const [info] = await qemuImgInfo(target, {format: 'qcow2', signal})
    return {image: target, disk: boot.file, virtualSize: info.virtualSize, ignoredDisks: layout.disks.slice(1).map((d) => d.file)}
  } catch (error) {
    await rm(partial, {force: true})
    await rm(target, {force: true})
    await rm(stagedRecord(ctx, slot), {force: true})
    throw error
  } finally {
    await rm(workDir, {recursive: true, force: true})
  }
}
