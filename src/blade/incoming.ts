import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {lstat, mkdir, rename, statfs} from 'node:fs/promises'
import {basename, join} from 'node:path'
import {pipeline} from 'node:stream/promises'

import {formatBytes} from '../box/format-info.js'
import {pushSettings, storageReserveBytes} from '../config/blade-config.js'
import {badInput, ShienError} from '../errors.js'
import type {BladeContext} from './caller.js'
import {checkBoxName, parseSlot} from '../names.js'
import {noteUploadSlot, removeOldUploads, slotNotePath} from './incoming-tidy.js'
import type {CommitResult, HashResult, PrepareResult, StorageSpace, UploadKind} from '../protocol/blade-steps.js'

/** What an upload can be, and the file extension it gets in incoming/. */
export const UPLOAD_KINDS: readonly UploadKind[] = ['box', 'delta']

/**
 * Where an upload lives in incoming/: `<name>.box` for a whole box, `<name>.delta` for a delta
 * push (docs/delta.md); `.part` while it is being sent. `box` keeps the name it always had.
 */
export function incomingPaths(ctx: BladeContext, name: string, kind: UploadKind = 'box') {
  if (!UPLOAD_KINDS.includes(kind)) throw badInput('BAD_UPLOAD_KIND', `"${kind}" is not an upload kind (${UPLOAD_KINDS.join(' or ')}).`)
  const box = join(ctx.paths.incoming, `${checkBoxName(name)}.${kind}`)
  return {box, part: `${box}.part`}
}

/**
 * Makes sure incoming/ exists and there is room for the upload, with the storage's reserve
 * (push.reserveGiB) still free after it; reports what a resume can use. The caller's uploads
 * older than push.keepIncomingDays are removed first, and the slot the upload is for is noted
 * (incoming-tidy.ts).
 */
export async function prepareUpload(ctx: BladeContext, name: string, size: number, kind: UploadKind = 'box', slot?: string): Promise<PrepareResult> {
  await mkdir(ctx.paths.incoming, {recursive: true, mode: 0o700})
  const {box, part} = incomingPaths(ctx, name, kind)
  const note = slotNotePath(ctx, name, kind)
  // The caller's old uploads go first (push.keepIncomingDays), this one's files aside.
  const removedOld = await removeOldUploads(ctx, pushSettings(ctx.config).keepIncomingDays, [box, part, note].map((p) => basename(p)))
  const forSlot = slot === undefined ? undefined : parseSlot(slot)
  const partSize = await regularFileSize(part)
  const boxSize = await regularFileSize(box)
  const {freeBytes, reserveBytes: reserve} = await storageSpace(ctx, ctx.paths.incoming)
  const needed = size - partSize
  if (freeBytes < needed + reserve) {
    const why = freeBytes < needed ? '' : `, and ${formatBytes(reserve)} must stay free for everyone's VMs`
    throw new ShienError(
      `Not enough space for the ${kind} on the blade: ${formatBytes(needed)} needed, ${formatBytes(freeBytes)} free in ${ctx.paths.incoming}${why}.`,
      {code: 'BLADE_DISK_FULL', exit: 'remote', suggestions: ['Remove old boxes from incoming/ or images you no longer need, or ask an admin for more space.']},
    )
  }
  // Noted once the upload may go: a refused one leaves nothing of its own behind.
  if (forSlot !== undefined) await noteUploadSlot(ctx, name, kind, forSlot)
  return {partPath: part, boxPath: box, partSize, boxSize, freeBytes, removedOld}
}

/**
 * The room on the storage that holds `dir` (the caller's folder by default): bytes free to the
 * caller, and the part of them (push.reserveGiB) that must stay free for everyone's VMs.
 */
export async function storageSpace(ctx: BladeContext, dir = ctx.paths.home): Promise<StorageSpace> {
  const fs = await statfs(dir)
  return {freeBytes: fs.bavail * fs.bsize, reserveBytes: storageReserveBytes(pushSettings(ctx.config), fs.blocks * fs.bsize)}
}

/**
 * The resume check on an incoming .part file: sha256 of its first `prefix` bytes, and of each
 * `blockSize` block after that up to the end of the file (at most 1024 blocks). `complete`
 * hashes the upload already in place instead (`<name>.box`), which a re-run after a later
 * failure uses as it is when the hashes agree.
 */
export async function hashPart(ctx: BladeContext, name: string, prefix: number, blockSize: number, kind: UploadKind = 'box', complete = false): Promise<HashResult> {
  const paths = incomingPaths(ctx, name, kind)
  const part = complete ? paths.box : paths.part
  const size = await regularFileSize(part)
  if (prefix > size) throw badInput('SHORT_PART', `${part} has ${size} bytes, fewer than ${prefix}.`)
  if (blockSize < 1 || (size - prefix) / blockSize > 1024) throw badInput('BAD_BLOCK_SIZE', `A block size of ${blockSize} is out of range.`)
  const blocks: string[] = []
  let block = createHash('sha256')
  let filled = 0
  if (size > prefix) {
    for await (const chunk of createReadStream(part, {start: prefix, end: size - 1, highWaterMark: 1 << 20}) as AsyncIterable<Buffer>) {
      let rest = chunk
      while (rest.length > 0) {
        const take = rest.subarray(0, blockSize - filled)
        block.update(take)
        filled += take.length
        rest = rest.subarray(take.length)
        if (filled === blockSize) {
          blocks.push(block.digest('hex'))
          block = createHash('sha256')
          filled = 0
        }
      }
    }
  }
  if (filled > 0) blocks.push(block.digest('hex'))
  return {prefix: await sha256File(part, prefix), blocks}
}

/**
 * Renames a complete upload into place. Its size is checked here; its sha256 is checked by
 * convert, which reads every byte anyway (the resume already checked what it kept by hash).
 */
export async function commitUpload(ctx: BladeContext, name: string, size: number, kind: UploadKind = 'box'): Promise<CommitResult> {
  const {box, part} = incomingPaths(ctx, name, kind)
  const actual = await regularFileSize(part)
  if (actual !== size) {
    throw new ShienError(`The uploaded ${kind} ${part} has ${actual} bytes, not the ${size} that were sent.`, {
      code: 'UPLOAD_CORRUPT',
      exit: 'remote',
      suggestions: ['Run the same push again: it resumes and checks what is on the blade.'],
    })
  }
  await rename(part, box)
  return {boxPath: box, size}
}

async function regularFileSize(path: string): Promise<number> {
  try {
    const stats = await lstat(path)
    if (!stats.isFile()) throw badInput('NOT_A_FILE', `${path} is not a regular file.`, [`Remove it: rm ${path}`])
    return stats.size
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0
    throw error
  }
}

export async function sha256File(path: string, length?: number): Promise<string> {
  const hash = createHash('sha256')
  if (length === 0) return hash.digest('hex')
  const end = length === undefined ? undefined : length - 1
  await pipeline(createReadStream(path, {end, highWaterMark: 1 << 20}), hash)
  return hash.digest('hex')
}

