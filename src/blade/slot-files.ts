import {lstat, readFile, rename, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import type {BoxLayout} from '../box/box-layout.js'
import {guestArchOf} from '../config/blade-arch.js'
import type {InstallResults} from '../protocol/blade-steps.js'
import type {BladeContext} from './caller.js'
import {incomingPaths} from './incoming.js'
import {removeUploadsOfSlot, slotNotePath} from './incoming-tidy.js'

/** The image being built for a slot, invisible to ie-virsh until installed. */
export const stagedImage = (ctx: BladeContext, slot: string) => join(ctx.paths.images, `.${slot}.new.qcow2`)
export const stagedRecord = (ctx: BladeContext, slot: string) => join(ctx.paths.images, `.${slot}.new.json`)
const oldImage = (ctx: BladeContext, slot: string) => join(ctx.paths.images, `.${slot}.old.qcow2`)
const oldRecord = (ctx: BladeContext, slot: string) => join(ctx.paths.images, `.${slot}.old.json`)

/** The staged record as it is (apply-delta writes the base it used), or an empty one. */
export async function readStagedRecord(ctx: BladeContext, slot: string): Promise<Record<string, unknown>> {
  try {
    const parsed: unknown = JSON.parse(await readFile(stagedRecord(ctx, slot), 'utf8'))
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {}
  } catch {
    return {}
  }
}

export async function writeStagedRecord(ctx: BladeContext, slot: string, record: unknown): Promise<string> {
  const path = stagedRecord(ctx, slot)
  await writeFile(path, JSON.stringify(record, null, 2) + '\n', {mode: 0o600})
  return path
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  )
}

async function moveIfExists(from: string, to: string): Promise<void> {
  if (await exists(from)) await rename(from, to)
}

/**
 * Puts the staged image in place as `<slot>.qcow2`, keeping the previous one as `.old` until
 * the VM started (`tidy`) or the push failed (`rollback`).
 */
export async function installStaged(ctx: BladeContext, slot: string): Promise<InstallResults['install']> {
  const image = ctx.paths.image(slot)
  const record = ctx.paths.record(slot)
  if (!(await exists(stagedImage(ctx, slot)))) {
    throw new Error(`No converted image for slot ${slot} is waiting (${stagedImage(ctx, slot)}).`)
  }
  const previous = await exists(image)
  await moveIfExists(image, oldImage(ctx, slot))
  await moveIfExists(record, oldRecord(ctx, slot))
  await rename(stagedImage(ctx, slot), image)
  await moveIfExists(stagedRecord(ctx, slot), record)
  return {image, record, previous}
}

/** The image being built for a slot and its record go; the slot's installed image is not touched. */
export async function removeStaged(ctx: BladeContext, slot: string): Promise<void> {
  await rm(stagedImage(ctx, slot), {force: true})
  await rm(`${stagedImage(ctx, slot)}.part`, {force: true})
  await rm(stagedRecord(ctx, slot), {force: true})
}

/**
 * Runs a step that makes or changes the slot's staged image (convert, apply-delta, harden). When
 * it fails or is stopped (Ctrl-C, or the laptop's connection gone: laptop-gone.ts), the staged
 * files go with it, so nothing half made waits in images/ for a laptop that may not come back.
 * The slot's lock (slot-lock.ts) makes the staged files this push's alone.
 */
export async function removingStagedOnFailure<T>(ctx: BladeContext, slot: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (error) {
    await removeStaged(ctx, slot)
    throw error
  }
}

/**
 * Undoes a half-done push: staged files go, and when the new image was already installed the
 * slot gets its previous image back (or is emptied again if it had none).
 */
export async function rollbackSlot(ctx: BladeContext, slot: string, installed: boolean): Promise<InstallResults['rollback']> {
  await removeStaged(ctx, slot)
  if (!installed) return {restored: false}
  if (!(await exists(oldImage(ctx, slot)))) {
    await rm(ctx.paths.image(slot), {force: true})
    await rm(ctx.paths.record(slot), {force: true})
    return {restored: false}
  }
  await rename(oldImage(ctx, slot), ctx.paths.image(slot))
  await moveIfExists(oldRecord(ctx, slot), ctx.paths.record(slot))
  return {restored: true}
}

/**
 * After a good push: the previous image and the upload (a box or a delta) are no longer needed,
 * nor is any other upload made for this slot, whatever its name.
 */
export async function tidySlot(ctx: BladeContext, slot: string, boxName?: string): Promise<void> {
  await rm(oldImage(ctx, slot), {force: true})
  await rm(oldRecord(ctx, slot), {force: true})
  if (boxName) {
    for (const kind of ['box', 'delta'] as const) {
      await rm(incomingPaths(ctx, boxName, kind).box, {force: true})
      await rm(slotNotePath(ctx, boxName, kind), {force: true})
    }
  }
  await removeUploadsOfSlot(ctx, slot)
}

/**
 * What a box declares about its machine, as the staged record keeps it from convert to harden:
 * the architecture (Vagrant's name) and where it is declared, and the firmware.
 */
export interface DeclaredPlatform {
  declaredArchitecture?: {architecture: string; source: string}
  firmware?: 'bios' | 'efi'
}

export function declaredPlatform(layout: Pick<BoxLayout, 'architecture' | 'architectureClaims' | 'firmware'>): DeclaredPlatform {
  const claim = layout.architectureClaims[0]
  return {
    ...(layout.architecture && claim ? {declaredArchitecture: {architecture: layout.architecture, source: claim.source}} : {}),
    ...(layout.firmware ? {firmware: layout.firmware} : {}),
  }
}

/** The declared platform a staged record holds, whatever else is in it (or nothing). */
export function declaredIn(record: Record<string, unknown>): DeclaredPlatform {
  const claim = record.declaredArchitecture as {architecture?: unknown; source?: unknown} | undefined
  const declared = typeof claim?.architecture === 'string' && typeof claim.source === 'string' ? {architecture: claim.architecture, source: claim.source} : undefined
  const firmware = record.firmware === 'bios' || record.firmware === 'efi' ? record.firmware : undefined
  return {...(declared ? {declaredArchitecture: declared} : {}), ...(firmware ? {firmware} : {})}
}

/**
 * What the slot's record tells ie-virsh to define the VM as: the machine of the guest's init
 * (harden checked it against the declaration), else the declaration, else x86_64 as before,
 * in libvirt's names (`x86_64`, `aarch64`; another stays as Vagrant names it, and ie-virsh
 * refuses it); the declared firmware, BIOS when none is declared, UEFI for any Arm machine.
 */
export function recordedPlatform(initMachine: string | undefined, declared: DeclaredPlatform): {architecture: string; firmware: 'bios' | 'efi'} & DeclaredPlatform {
  const machine = initMachine ?? declared.declaredArchitecture?.architecture ?? 'amd64'
  const architecture = guestArchOf(machine) ?? machine
  const firmware = architecture === 'aarch64' ? 'efi' : (declared.firmware ?? 'bios')
  return {architecture, firmware, ...(declared.declaredArchitecture ? {declaredArchitecture: declared.declaredArchitecture} : {})}
}
