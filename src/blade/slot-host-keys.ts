import {constants} from 'node:fs'
import {open} from 'node:fs/promises'

import type {HostKeysResult} from '../protocol/blade-steps.js'
import type {BladeContext} from './caller.js'
import {checkSlotName} from './convert.js'

const MAX_RECORD_BYTES = 1 << 20

/**
 * The public host keys harden made for the VM in a slot, from the slot's record
 * (`images/<slot>.json`): what a laptop records in known_hosts when it has none for the VM
 * (a push from another laptop). Empty when the slot has no record or a record from before
 * host keys were kept in it.
 */
export async function slotHostKeys(ctx: BladeContext, rawSlot: string): Promise<HostKeysResult> {
  const slot = checkSlotName(rawSlot)
  const text = await readRecord(ctx.paths.record(slot))
  if (text === undefined) return {slot, hostKeys: []}
  let record: unknown
  try {
    record = JSON.parse(text)
  } catch {
    return {slot, hostKeys: []}
  }
  return {slot, hostKeys: newHostKeys((record as {harden?: unknown} | null)?.harden)}
}

/**
 * The public halves of the host keys a harden report says it made (`hostKeys.new[].publicKey`),
 * from a report just made or read back from a record (where anything may be written).
 */
export function newHostKeys(report: unknown): string[] {
  const made = (report as {hostKeys?: {new?: unknown}} | null | undefined)?.hostKeys?.new
  return Array.isArray(made) ? made.flatMap((k) => (typeof k?.publicKey === 'string' ? [k.publicKey as string] : [])) : []
}

/** The record's text, read without following a link; undefined when there is none. */
async function readRecord(path: string): Promise<string | undefined> {
  const file = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => undefined)
  if (file === undefined) return undefined
  try {
    const st = await file.stat()
    if (!st.isFile() || st.size > MAX_RECORD_BYTES) return undefined
    return await file.readFile('utf8')
  } finally {
    await file.close()
  }
}
