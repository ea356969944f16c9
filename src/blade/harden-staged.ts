import {pushSettings} from '../config/blade-config.js'
import {hardenImage} from '../harden/harden-image.js'
import type {HardenResult} from '../protocol/blade-steps.js'
import type {BladeContext} from './caller.js'
import {checkSlotName} from './convert.js'
import {newHostKeys} from './slot-host-keys.js'
import {publicKeySha256} from './kept-harden.js'
import {declaredIn, readStagedRecord, recordedPlatform, stagedImage, writeStagedRecord} from './slot-files.js'

/**
 * Hardens the slot's staged image and writes what was done next to it. libguestfs runs as the
 * student; TCG is forced where the blade's config says KVM is not usable, and the appliance
 * gets the memory the blade's config allots (push.applianceMemMiB) and boots the blade's fixed
 * appliance when it has one (push.appliance).
 */
export async function hardenStaged(ctx: BladeContext, slot: string, publicKey: string, meta: Record<string, unknown>, signal?: AbortSignal): Promise<HardenResult> {
  checkSlotName(slot)
  const forceTcg = ctx.config.domainType === 'qemu'
  const {applianceMemMiB, appliance} = pushSettings(ctx.config)
  const staged = await readStagedRecord(ctx, slot)
  const {declaredArchitecture, firmware} = declaredIn(staged)
  const report = await hardenImage(stagedImage(ctx, slot), {publicKey, user: 'vagrant', signal, forceTcg, applianceMemMiB, appliance, declared: declaredArchitecture})
  // The base an overlay was made on (apply-delta) stays in the record, for shien audit.
  const {base} = staged
  const platform = recordedPlatform(report.architecture?.machine, {declaredArchitecture, firmware})
  // The upload's sha256 (in meta) and the key's let a re-run pick this result up (kept-harden.ts).
  const record = {slot, hardenedAt: new Date().toISOString(), ...meta, publicKeySha256: publicKeySha256(publicKey), ...(base === undefined ? {} : {base}), ...platform, harden: report}
  const recordPath = await writeStagedRecord(ctx, slot, record)
  const hostKeys = newHostKeys(report)
  return {record: recordPath, report, hostKeys}
}
