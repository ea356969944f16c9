/**
 * Old uploads do not pile up in incoming/. Each upload notes the slot it was sent for (a
 * `.<name>.<kind>.slot` file beside it), so a good push of a slot removes every upload made for
 * that slot, whatever its name; and every push first removes the caller's own uploads older
 * than push.keepIncomingDays. Run as the student in the student's own folder: entries are
 * looked at without following links, and only the entries themselves are removed.
 */
import {lstat, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import type {UploadKind} from '../protocol/blade-steps.js'
import type {BladeContext} from './caller.js'

const SLOT_NOTE = /^\.(.+)\.(box|delta)\.slot$/
const WORK_DIR = /^\..+\.work-/
const DAY_MS = 24 * 60 * 60 * 1000

/** Where an upload notes its slot. */
export const slotNotePath = (ctx: BladeContext, name: string, kind: UploadKind) => join(ctx.paths.incoming, `.${name}.${kind}.slot`)

/** Notes that the upload `name` of `kind` is for `slot`. */
export async function noteUploadSlot(ctx: BladeContext, name: string, kind: UploadKind, slot: string): Promise<void> {
  await writeFile(slotNotePath(ctx, name, kind), JSON.stringify({slot}) + '\n', {mode: 0o600})
}

/** Removes every upload noted for `slot` (whole, part and note); returns the names removed. */
export async function removeUploadsOfSlot(ctx: BladeContext, slot: string): Promise<string[]> {
  const removed: string[] = []
  for (const entry of await entries(ctx.paths.incoming)) {
    const match = SLOT_NOTE.exec(entry)
    if (!match) continue
    const note = join(ctx.paths.incoming, entry)
    if ((await notedSlot(note)) !== slot) continue
    const upload = `${match[1]}.${match[2]}`
    for (const name of [upload, `${upload}.part`, entry]) {
      if (await isThere(join(ctx.paths.incoming, name))) removed.push(name)
      await rm(join(ctx.paths.incoming, name), {force: true})
    }
  }
  return removed
}

/**
 * Removes the caller's uploads (and a crashed convert's work folders) last changed more than
 * `days` ago, except the names in `keep`; returns the names removed.
 */
export async function removeOldUploads(ctx: BladeContext, days: number, keep: string[], now = Date.now()): Promise<string[]> {
  const removed: string[] = []
  for (const name of await entries(ctx.paths.incoming)) {
    if (keep.includes(name)) continue
    const path = join(ctx.paths.incoming, name)
    const stats = await lstat(path).catch(() => undefined)
    if (!stats || now - stats.mtimeMs <= days * DAY_MS) continue
    if (stats.isFile() || stats.isSymbolicLink()) await rm(path, {force: true})
    else if (stats.isDirectory() && WORK_DIR.test(name)) await rm(path, {recursive: true, force: true})
    else continue
    removed.push(name)
  }
  return removed
}

async function entries(dir: string): Promise<string[]> {
  return readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return []
    throw error
  })
}

async function notedSlot(path: string): Promise<string | undefined> {
  const stats = await lstat(path).catch(() => undefined)
  if (!stats?.isFile()) return undefined
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as {slot?: unknown}
    return typeof parsed.slot === 'string' ? parsed.slot : undefined
  } catch {
    return undefined
  }
}

async function isThere(path: string): Promise<boolean> {
  return lstat(path).then(() => true, () => false)
}
