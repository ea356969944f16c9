/**
 * A re-run picks up what the blade finished while the laptop was gone. When a push's connection
 * went after harden had finished on the blade, the hardened image and its record wait in the
 * slot's staged files (images/.<slot>.new.qcow2 and .json); the same push run again asks
 * convert (or apply-delta) with the upload's sha256 and its public key, and gets that image
 * back, hardened, instead of a new conversion and harden.
 *
 * These are the student's own files, read as the student by a blade step that runs as the
 * student: a student who edits them fools only their own push, and the image still passes
 * ie-virsh's gate like any other. Nothing root runs reads them, and nothing here reaches
 * another student's folder.
 */
import {createHash} from 'node:crypto'
import {lstat} from 'node:fs/promises'

import {qemuImgInfo} from '../qemu-img/qemu-img.js'
import type {ConvertResult} from '../protocol/blade-steps.js'
import type {BladeContext} from './caller.js'
import {readStagedRecord, stagedImage, stagedRecord} from './slot-files.js'
import {newHostKeys} from './slot-host-keys.js'

/** What the harden record keeps of the key it installed: the line's sha256, not the line. */
export function publicKeySha256(publicKey: string): string {
  return createHash('sha256').update(publicKey.trim()).digest('hex')
}

/**
 * The slot's staged image, when it is the hardened result of this very upload (its sha256) for
 * this key, left untouched since: undefined otherwise, and then the push converts again.
 */
export async function keptHardened(ctx: BladeContext, slot: string, want: {sha256?: string; publicKey?: string}): Promise<ConvertResult | undefined> {
  if (!want.sha256 || !want.publicKey) return undefined
  const image = stagedImage(ctx, slot)
  const recordPath = stagedRecord(ctx, slot)
  const [imageStat, recordStat] = await Promise.all([lstat(image).catch(() => undefined), lstat(recordPath).catch(() => undefined)])
  if (!imageStat?.isFile() || !recordStat?.isFile()) return undefined
  // Harden writes its record after it closed the image: an image changed since is not its result.
  if (imageStat.mtimeMs > recordStat.mtimeMs) return undefined
  const record = await readStagedRecord(ctx, slot)
  const same = record.slot === slot && record.boxSha256 === want.sha256 && record.publicKeySha256 === publicKeySha256(want.publicKey)
  if (!same || typeof record.harden !== 'object' || record.harden === null) return undefined
  const [info] = await qemuImgInfo(image, {format: 'qcow2'}).catch(() => [undefined])
  if (!info) return undefined
  return {image, disk: '', virtualSize: info.virtualSize, ignoredDisks: [], hardened: {record: recordPath, report: record.harden, hostKeys: newHostKeys(record.harden)}}
}
