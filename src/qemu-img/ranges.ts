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
  /**
   * The qcow2 the image is an overlay of, opened as named here (format declared, its own
   * backing not opened) rather than as the image's header names it. Only for a qcow2 image.
   */
  backing?: string
}

/** The image as a qemu block-layer node: every driver named, nothing probed or followed. */
function imageNode(path: string, o: RangeOptions): Record<string, unknown> {
  const image: Record<string, unknown> = {driver: o.format, file: {driver: 'file', filename: path}}
  if (o.format === 'raw') return image
  image.backing = o.backing === undefined ? null : {driver: 'qcow2', file: {driver: 'file', filename: o.backing}, backing: null}
  return image
}

/** `qemu-img map --output=json` of the window [start, start+length) of the virtual disk. */
export async function qemuImgMap(path: string, window: {start: number; length: number}, o: RangeOptions): Promise<MapRange[]> {
  // A json: filename keeps a path with commas intact and names the backing node exactly.
  const source = o.backing === undefined ? ['-f', o.format, path] : [`json:${JSON.stringify(imageNode(path, o))}`]
  const args = ['map', '--output=json', `--start-offset=${window.start}`, `--max-length=${window.length}`, ...source]
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
 * opened (`backing: null`) unless `o.backing` names it: callers that want a chain's content
 * check for one first.
 */
export async function qemuImgExtract(
  path: string,
  range: {offset: number; length: number},
  dest: string,
  o: RangeOptions,
): Promise<void> {
  // A json: filename keeps a path with commas intact and names every driver, so nothing is probed.
  const source = `json:${JSON.stringify({driver: 'raw', offset: range.offset, size: range.length, file: imageNode(path, o)})}`
  const r = await runTool('qemu-img', ['convert', '-O', 'raw', source, dest], {
    signal: o.signal, timeoutMs: o.timeoutMs ?? 600_000, as: o.as, env: o.env,
  })
  if (r.exitCode !== 0) throw new QemuImgError(failureOf(r.stderr, r.timedOut), qemuLine(r.stderr))
}
