import {runTool, type RunAs} from '../process/run.js'
import {failureOf, qemuImgJson, qemuLine, QemuImgError, type DiskFormat} from './qemu-img.js'

/** One run of the virtual disk as `qemu-img map --output=json` reports it. */
export interface MapRange {
  start: number
  length: number
  /** The range reads as zeroes (unallocated without a backing file, or a zero cluster). */
  zero: boolean
  /** The range is stored as data in the image (it may still hold zeroes). */
  data: boolean
}

export interface RangeOptions {
  format: DiskFormat
  signal?: AbortSignal
  as?: RunAs
  env?: 'clean' | 'user'
  timeoutMs?: number
}

/** `qemu-img map --output=json` of the window [start, start+length) of the virtual disk. */
export async function qemuImgMap(path: string, window: {start: number; length: number}, o: RangeOptions): Promise<MapRange[]> {
  const args = ['map', '--output=json', '-f', o.format, `--start-offset=${window.start}`, `--max-length=${window.length}`, path]
  const parsed = await qemuImgJson(args, {...o, timeoutMs: o.timeoutMs ?? 120_000})
  if (!Array.isArray(parsed)) throw new QemuImgError('failed', 'qemu-img map printed no list')
  return parsed.map((raw: Record<string, unknown>) => {
    if (typeof raw.start !== 'number' || typeof raw.length !== 'number') throw new QemuImgError('failed', 'qemu-img map printed a range without start or length')
    return {start: raw.start, length: raw.length, zero: raw.zero === true, data: raw.data === true}
  })
}

/**
 * Writes the bytes [offset, offset+length) of the virtual disk as a raw file at `dest`, with
 * `qemu-img convert` reading the image through a raw window. The image's backing file is not
 * opened (`backing: null`): callers that want a chain's content check for one first.
 */
export async function qemuImgExtract(
  path: string,
  range: {offset: number; length: number},
  dest: string,
  o: RangeOptions,
): Promise<void> {
  const image: Record<string, unknown> = {driver: o.format, file: {driver: 'file', filename: path}}
  if (o.format !== 'raw') image.backing = null
  // A json: filename keeps a path with commas intact and names every driver, so nothing is probed.
  const source = `json:${JSON.stringify({driver: 'raw', offset: range.offset, size: range.length, file: image})}`
  const r = await runTool('qemu-img', ['convert', '-O', 'raw', source, dest], {
    signal: o.signal, timeoutMs: o.timeoutMs ?? 600_000, as: o.as, env: o.env,
  })
  if (r.exitCode !== 0) throw new QemuImgError(failureOf(r.stderr, r.timedOut), qemuLine(r.stderr))
}
