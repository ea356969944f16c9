/**
 * Whether the published base an image is an overlay of is still the file the overlay was made
 * on. apply-delta keeps the base's identity in the slot's record (`images/<slot>.json`, field
 * `base`); a base replaced or rewritten since (another inode, size, mtime or ctime) means the
 * VM's disk is no longer what the student pushed. The record is the student's own file: a
 * forged one can hide this finding for the student's own image, nobody else's.
 */
import {lstat} from 'node:fs/promises'
import {sep} from 'node:path'

import {openExact} from '../privileged/safe-open.js'
import type {ImageRef} from './image-checks.js'
import type {Finding} from './types.js'

const RECORD_LIMIT = 1024 * 1024

interface BaseRecord {
  box?: string
  version?: string
  path?: string
  dev?: string
  ino?: string
  size?: string
  mtimeNs?: string
  ctimeNs?: string
}

/** A `base-changed` finding for an image whose vetted chain ends in a published base, if it changed. */
export async function baseChangedFinding(ref: ImageRef & {image: string}, chain: string[], boxesDir: string): Promise<Finding | undefined> {
  const base = chain.at(-1)
  if (base === undefined || !base.startsWith(boxesDir + sep)) return undefined
  const recorded = await readBaseRecord(ref.image.replace(/\.qcow2$/, '.json'))
  if (recorded?.path !== base) return undefined
  const now = await lstat(base, {bigint: true}).catch(() => undefined)
  const same = now !== undefined && [
    [now.dev, recorded.dev], [now.ino, recorded.ino], [now.size, recorded.size], [now.mtimeNs, recorded.mtimeNs], [now.ctimeNs, recorded.ctimeNs],
  ].every(([actual, then]) => String(actual) === then)
  if (same) return undefined
  return {
    ...ref, code: 'base-changed', severity: 'high',
    message: `The published base ${base} (${recorded.box ?? '?'} ${recorded.version ?? '?'}) changed after this image was made as an overlay of it: the VM's disk is no longer what was pushed.`,
    fix: 'Push the VM again (the delta is made against the base as it is now), and publish new versions instead of replacing one in use.',
    detail: {base, box: recorded.box ?? '', version: recorded.version ?? ''},
  }
}

async function readBaseRecord(path: string): Promise<BaseRecord | undefined> {
  let opened
  try {
    opened = await openExact(path, {code: 'RECORD'})
  } catch {
    return undefined
  }
  try {
    if (opened.stat.size > RECORD_LIMIT) return undefined
    const parsed = JSON.parse(await opened.handle.readFile('utf8')) as {base?: unknown}
    return typeof parsed.base === 'object' && parsed.base !== null ? (parsed.base as BaseRecord) : undefined
  } catch {
    return undefined
  } finally {
    await opened.handle.close()
  }
}
