import {ShienError} from '../errors.js'
import {withAccountLock} from '../privileged/lock.js'
import {openDomainXmls, type DomainXmls} from '../privileged/domain-xmls.js'
import {openSlotRecords, type SlotRecords} from '../privileged/slot-records.js'
import type {Hypervisor} from './virsh.js'
import type {Owner} from '../privileged/standing.js'

/** What the claims take of ie-virsh's context (virsh/context.ts): the caller, the account's lock, libvirt and the records. */
export interface ClaimContext {
  owner: Pick<Owner, 'account'>
  lockPath: string
  signal: AbortSignal
  hypervisor: Pick<Hypervisor, 'dumpXml' | 'state'>
  cluster: () => Promise<ClusterSlots | undefined>
}

/**
 * ie-virsh's side of the slot records (docs/cluster.md): with a `cluster` section in the blade
 * config, a slot is defined on one blade at a time, so define claims the slot's record for this
 * blade before libvirt hears of it, undefine releases it, and a slot defined here before the
 * section existed is claimed when define, start or list first sees it. Each defined domain's XML
 * is kept beside the records, for an admin's `recover`. Without the section nothing here runs
 * and no cluster folder is made: one blade, as before.
 */
export interface ClusterSlots {
  /** This blade's name in the cluster (`cluster.self`, or the entry named after the host). */
  self: string
  records: SlotRecords
  xmls: DomainXmls
}

/** The records and kept XML of a storage root, for blade `self`; their folders are checked first. */
export async function openClusterSlots(storageRoot: string, self: string): Promise<ClusterSlots> {
  // The XML folder first: a refusal there comes before any record is taken.
  const xmls = await openDomainXmls(storageRoot)
  return {self, records: await openSlotRecords(storageRoot), xmls}
}

/**
 * Claims the slot for this blade before `define` hands its XML to libvirt, and keeps that XML;
 * the slot is not defined on this blade (the caller checked, under the account's lock). Hands
 * back what undoes both, for a define that fails.
 */
export async function claimForDefine(ctx: ClaimContext, slot: string): Promise<{keep: (xml: string) => Promise<void>; undo: () => Promise<void>}> {
  const cluster = await ctx.cluster()
  if (cluster === undefined) return {keep: async () => undefined, undo: async () => undefined}
  const account = ctx.owner.account
  await cluster.records.claim(account, slot, cluster.self, {signal: ctx.signal})
  return {
    keep: (xml) => cluster.xmls.keep(account, slot, xml),
    undo: async () => {
      await cluster.xmls.remove(account, slot)
      // The domain is not on this blade, so a record naming it would be false.
      await cluster.records.release(account, slot, {blade: cluster.self}, {signal: ctx.signal})
    },
  }
}

/**
 * A slot defined on this blade: its record must name this blade. A slot with no record (defined
 * before the cluster section existed) is claimed now and its definition kept; one recorded on
 * another blade is SLOT_ELSEWHERE. Call it under the account's lock, the domain seen defined.
 */
export async function claimDefinedHere(ctx: ClaimContext, name: string, slot: string): Promise<void> {
  const cluster = await ctx.cluster()
  if (cluster === undefined) return
  const account = ctx.owner.account
  const {fresh} = await cluster.records.claim(account, slot, cluster.self, {signal: ctx.signal})
  if (fresh || (await cluster.xmls.read(account, slot)) === undefined) {
    await cluster.xmls.keep(account, slot, await ctx.hypervisor.dumpXml(name, {signal: ctx.signal, inactive: true, withSecrets: true}))
  }
}

/**
 * `list`'s first sight. Records are read without a lock; only slots with none are claimed, under
 * the account's lock (an undefine meanwhile must not leave a record behind), and only if that lock
 * comes within a moment: list does not wait out another command (a shutdown may hold it for
 * minutes), the next command claims instead. Hands back the slots recorded on another blade, with
 * that blade: the list shows them rather than failing.
 */
export async function claimListed(ctx: ClaimContext, listed: ReadonlyArray<{name: string; slot: string}>): Promise<Map<string, string>> {
  const elsewhere = new Map<string, string>()
  const cluster = await ctx.cluster()
  if (cluster === undefined) return elsewhere
  const unclaimed: Array<{name: string; slot: string}> = []
  for (const domain of listed) {
    const held = await cluster.records.read(ctx.owner.account, domain.slot)
    if (held === undefined) unclaimed.push(domain)
    else if (held.blade !== cluster.self) elsewhere.set(domain.slot, held.blade)
  }
  if (unclaimed.length === 0) return elsewhere
  const claimAll = async () => {
    for (const {name, slot} of unclaimed) {
      if ((await ctx.hypervisor.state(name, {signal: ctx.signal})) === undefined) continue
      try {
        await claimDefinedHere(ctx, name, slot)
      } catch (error) {
        if (!(error instanceof ShienError && error.code === 'SLOT_ELSEWHERE')) throw error
        const held = await cluster.records.read(ctx.owner.account, slot)
        if (held !== undefined) elsewhere.set(slot, held.blade)
      }
    }
  }
  await withAccountLock(ctx.lockPath, claimAll, {signal: ctx.signal, waitSeconds: LIST_LOCK_WAIT_SECONDS}).catch((error: unknown) => {
    if (!(error instanceof ShienError && error.code === 'LOCKED')) throw error
  })
  return elsewhere
}

/** How long `list` waits for the account's lock to claim slots it sees first. */
const LIST_LOCK_WAIT_SECONDS = 2

/**
 * After an undefine on this blade: the record and the kept XML go. A record naming another blade
 * stays, and so does the XML (both are that blade's definition).
 */
export async function releaseAfterUndefine(ctx: ClaimContext, slot: string): Promise<void> {
  const cluster = await ctx.cluster()
  if (cluster === undefined) return
  const account = ctx.owner.account
  try {
    await cluster.records.release(account, slot, {blade: cluster.self}, {signal: ctx.signal})
  } catch (error) {
    if (error instanceof ShienError && error.code === 'SLOT_NOT_HOLDER') return
    throw error
  }
  await cluster.xmls.remove(account, slot)
}
