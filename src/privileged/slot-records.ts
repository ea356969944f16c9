import {readdir, unlink} from 'node:fs/promises'

import {z} from 'zod'

import {ShienError} from '../errors.js'
import {BLADE_NAME} from '../config/blade-schema.js'
import {clusterPaths, domainName} from '../config/storage-layout.js'
import {ACCOUNT_PATTERN, SLOT_PATTERN, checkAccount} from '../names.js'
import {flockDescriptor} from '../process/flock.js'
import {ensureRootDir, writeRootFile} from './root-dir.js'
import {openExact} from './safe-open.js'

/**
 * Which blade each `<account>-<slot>` is defined on, cluster-wide: one small JSON file a slot in
 * `<root>/cluster/slots/`, a folder only root writes, changed only under the flock of
 * `<root>/cluster/slots.lock` (GFS2 with DLM extends flock to every blade). A slot with no
 * record is defined nowhere; a slot is never recorded on two blades (docs/cluster.md).
 */

const recordSchema = z.strictObject({
  account: z.string().regex(ACCOUNT_PATTERN),
  slot: z.string().regex(SLOT_PATTERN),
  blade: z.string().regex(BLADE_NAME),
  /** When the blade took it (claim or move), ISO 8601. */
  since: z.string(),
  /** The blade it was moved from, when it was. */
  from: z.string().regex(BLADE_NAME).optional(),
})

/** One slot's record: the blade it is defined on, since when, and where it came from. */
export type SlotRecord = z.output<typeof recordSchema>

/**
 * Who changes a record: a blade (only the one that holds the slot may move or release it), or an
 * admin path (`admin migrate`, `recover`) that names the blade it found holding the slot, so a
 * record that changed meanwhile is not overwritten.
 */
export type SlotActor = {blade: string} | {admin: true; from: string}

export interface SlotRecordOptions {
  signal: AbortSignal
  /** How long to wait for the lock (another blade changing records); 30 s by default. */
  waitSeconds?: number
}

export interface SlotRecords {
  /** Records `blade` as the slot's; `fresh` is false when that blade had it already. Refused (SLOT_ELSEWHERE) when another blade has it. */
  claim(account: string, slot: string, blade: string, o: SlotRecordOptions): Promise<{record: SlotRecord; fresh: boolean}>
  /** Moves the slot's record to blade `to`, for the holder or an admin path; a slot with no record is SLOT_UNCLAIMED. */
  move(account: string, slot: string, to: string, by: SlotActor, o: SlotRecordOptions): Promise<SlotRecord>
  /** Removes the slot's record (after an undefine), for the holder or an admin path; the record removed, or undefined when there was none. */
  release(account: string, slot: string, by: SlotActor, o: SlotRecordOptions): Promise<SlotRecord | undefined>
  /** The slot's record, or undefined where it is defined nowhere. No lock: records are replaced whole. */
  read(account: string, slot: string): Promise<SlotRecord | undefined>
  /** Every record, by domain name. */
  list(): Promise<SlotRecord[]>
}

const RECORD_FILE = /^([a-z_][a-z0-9_-]{0,31})-(0[1-9]|[1-9][0-9])\.json$/

/**
 * The slot records of a storage root, its folders made or checked first (root's, no one else may
 * write them, no symlink in their path). `storageRoot` is the resolved one (PrivilegedRun.root).
 */
export async function openSlotRecords(storageRoot: string): Promise<SlotRecords> {
  const paths = clusterPaths(storageRoot)
  await ensureRootDir(paths.dir, 0o755)
  await ensureRootDir(paths.slots, 0o755)

  const read = async (account: string, slot: string): Promise<SlotRecord | undefined> => {
    const path = paths.record(account, checkSlot(slot))
    const opened = await openExact(path, {code: 'SLOT_RECORD'}).catch((error: unknown) => {
      if (error instanceof ShienError && error.code === 'SLOT_RECORD_MISSING') return undefined
      throw damaged(path, error instanceof Error ? error.message : String(error), error)
    })
    if (opened === undefined) return undefined
    const text = await opened.handle.readFile('utf8').finally(() => opened.handle.close())
    return parseRecord(path, text, account, slot)
  }

  const locked = async <T>(work: () => Promise<T>, o: SlotRecordOptions): Promise<T> => {
    const opened = await openExact(paths.lock, {code: 'CLUSTER_LOCK', create: true})
    try {
      const wait = o.waitSeconds ?? 30
      const r = await flockDescriptor(opened.handle.fd, {waitSeconds: wait, signal: o.signal})
      if (!r.locked && r.busy) {
        throw new ShienError(`Another blade or command has held the cluster's slot lock ${paths.lock} for over ${wait} s.`, {
          code: 'CLUSTER_LOCKED',
          exit: 'refused',
          suggestions: ['Try again in a minute; if it stays, ask an admin to look for a stuck shien command on the blades.'],
        })
      }
      if (!r.locked) throw new ShienError(`Cannot lock ${paths.lock}: ${r.message}.`, {code: 'LOCK_FAILED', exit: 'remote'})
      return await work()
    } finally {
      // Closing our only descriptor of the lock file releases the flock.
      await opened.handle.close()
    }
  }

  const write = (record: SlotRecord) => writeRootFile(paths.record(record.account, record.slot), `${JSON.stringify(record)}\n`)

  return {
    read,
    claim: (account, slot, blade, o) => locked(async () => {
      checkBlade(blade)
      const held = await read(account, slot)
      if (held?.blade === blade) return {record: held, fresh: false}
      if (held !== undefined) throw heldElsewhere(held, blade)
      const record: SlotRecord = {account: checkAccount(account), slot, blade, since: new Date().toISOString()}
      await write(record)
      return {record, fresh: true}
    }, o),
    move: (account, slot, to, by, o) => locked(async () => {
      checkBlade(to)
      const held = await read(account, slot)
      if (held === undefined) throw unclaimed(account, slot)
      allowed(held, by, `move ${domainName(account, slot)}`)
      if (held.blade === to) return held
      const record: SlotRecord = {account, slot, blade: to, since: new Date().toISOString(), from: held.blade}
      await write(record)
      return record
    }, o),
    release: (account, slot, by, o) => locked(async () => {
      const held = await read(account, slot)
      if (held === undefined) return undefined
      allowed(held, by, `release ${domainName(account, slot)}`)
      await unlink(paths.record(account, slot))
      return held
    }, o),
    list: async () => {
      const records: SlotRecord[] = []
      for (const name of (await readdir(paths.slots)).sort()) {
        const m = RECORD_FILE.exec(name)
        // Temporary files start with a dot; a record released since readdir is simply gone.
        const record = m === null ? undefined : await read(m[1], m[2])
        if (record !== undefined) records.push(record)
      }
      return records
    },
  }
}

function parseRecord(path: string, text: string, account: string, slot: string): SlotRecord {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    throw damaged(path, 'not JSON', error)
  }
  const r = recordSchema.safeParse(value)
  if (!r.success) throw damaged(path, r.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`).join('; '), r.error)
  if (r.data.account !== account || r.data.slot !== slot) throw damaged(path, `it names ${domainName(r.data.account, r.data.slot)}`)
  return r.data
}

function allowed(held: SlotRecord, by: SlotActor, what: string): void {
  const name = domainName(held.account, held.slot)
  if ('admin' in by) {
    if (held.blade === by.from) return
    throw new ShienError(`Cannot ${what} from ${by.from}: it is on ${held.blade} now (since ${held.since}).`, {
      code: 'SLOT_MOVED',
      exit: 'refused',
      suggestions: [`Look where ${name} is now and run the command again with ${held.blade}.`],
    })
  }
  if (held.blade === by.blade) return
  throw new ShienError(`${by.blade} cannot ${what}: ${held.blade} holds it (since ${held.since}).`, {
    code: 'SLOT_NOT_HOLDER',
    exit: 'refused',
    suggestions: [`Act on ${name} on ${held.blade}, or ask an admin to move it.`],
  })
}

function heldElsewhere(held: SlotRecord, blade: string): ShienError {
  const name = domainName(held.account, held.slot)
  return new ShienError(`${name} is defined on ${held.blade} (since ${held.since}), so it cannot be defined on ${blade}: a slot is one VM across the blades.`, {
    code: 'SLOT_ELSEWHERE',
    exit: 'refused',
    suggestions: [`Use ${name} on ${held.blade}, or undefine it there first; an admin can move it to ${blade}.`],
  })
}

function unclaimed(account: string, slot: string): ShienError {
  return new ShienError(`${domainName(account, slot)} is not defined on any blade: there is nothing to move.`, {
    code: 'SLOT_UNCLAIMED',
    exit: 'refused',
    suggestions: ['Define it (shien push) on the blade you want instead.'],
  })
}

function damaged(path: string, why: string, cause?: unknown): ShienError {
  return new ShienError(`The slot record ${path} cannot be read: ${why}.`, {
    code: 'SLOT_RECORD_INVALID',
    exit: 'remote',
    cause,
    suggestions: ['Ask an admin: only shien writes these records (docs/cluster.md); check the file, and remove it if the slot is defined on no blade.'],
  })
}

function checkSlot(slot: string): string {
  if (!SLOT_PATTERN.test(slot)) throw new ShienError(`Internal error: "${slot}" is not a slot.`, {code: 'BAD_SLOT', exit: 'usage'})
  return slot
}

function checkBlade(blade: string): void {
  if (!BLADE_NAME.test(blade)) throw new ShienError(`Internal error: "${blade}" is not a blade name.`, {code: 'UNKNOWN_BLADE', exit: 'usage'})
}
