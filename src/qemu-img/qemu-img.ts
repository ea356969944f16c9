import {firstErrorLine, runStreaming, runTool, type RunAs} from '../process/run.js'

/** Formats shien ever names to qemu-img; it is always told the format, never left to probe. */
export type DiskFormat = 'vmdk' | 'qcow2' | 'raw' | 'parallels'

/** Why qemu-img failed, as far as callers act on it differently. */
export type QemuImgFailure =
  /** The target's filesystem is full (ENOSPC). */
  | 'disk-full'
  /** Another process (a running VM) holds the image's lock. */
  | 'in-use'
  | 'timed-out'
  | 'failed'

/** A qemu-img run that did not succeed: why, and its last error line, for the caller's message. */
export class QemuImgError extends Error {
  constructor(
    readonly failure: QemuImgFailure,
    readonly line: string,
  ) {
    super(line)
  }
}

/** The one map from qemu-img's stderr to a failure. */
export function failureOf(stderr: string, timedOut = false): QemuImgFailure {
  if (timedOut) return 'timed-out'
  if (/No space left|ENOSPC/i.test(stderr)) return 'disk-full'
  if (/Failed to get .*lock|is in use/i.test(stderr)) return 'in-use'
  return 'failed'
}

/** The last progress figure in output of `qemu-img convert -p` ("    (42.00/100%)\r"). */
export function lastPercent(text: string): number | undefined {
  const last = [...text.matchAll(/\((\d+(?:\.\d+)?)\/100%\)/g)].at(-1)
  return last ? Number(last[1]) : undefined
}

/** One image of a backing chain as `qemu-img info --backing-chain` reports it. */
export interface ImageLayer {
  filename: string
  format: string
  virtualSize: number
  /** The space the file takes on disk, when qemu-img reports it. */
  actualSize?: number
  /** Where qemu resolved the backing file to (absolute), when there is one. */
  backingFile?: string
  /** The backing format the header declares; absent means qemu would probe it. */
  backingFormat?: string
  /** An external data file named in the qcow2 header. */
  dataFile?: string
}

export interface InfoOptions {
  format: DiskFormat
  /** Every layer of the backing chain, top first; otherwise just the one image. */
  backingChain?: boolean
  signal?: AbortSignal
  /** Run as this user: for files a student controls (see exec.ts). */
  as?: RunAs
  /** `user` on a person's own machine, where qemu-img may not be in the clean PATH. */
  env?: 'clean' | 'user'
  timeoutMs?: number
}

/** Runs a `qemu-img ... --output=json` subcommand and parses what it prints; a failure is a QemuImgError. */
export async function qemuImgJson(args: string[], o: {signal?: AbortSignal; timeoutMs: number; as?: RunAs; env?: 'clean' | 'user'}): Promise<unknown> {
  const r = await runTool('qemu-img', args, {signal: o.signal, timeoutMs: o.timeoutMs, as: o.as, env: o.env})
  if (r.exitCode !== 0) throw new QemuImgError(failureOf(r.stderr, r.timedOut), qemuLine(r.stderr))
  try {
    return JSON.parse(r.stdout) as unknown
  } catch {
    throw new QemuImgError('failed', `qemu-img ${args[0]} printed something other than JSON`)
  }
}

/** `qemu-img info --output=json -f FORMAT`: the image's layers, top first. */
export async function qemuImgInfo(path: string, o: InfoOptions): Promise<ImageLayer[]> {
  const args = ['info', '--output=json', ...(o.backingChain ? ['--backing-chain'] : []), '-f', o.format, path]
  const parsed = await qemuImgJson(args, {...o, timeoutMs: o.timeoutMs ?? 60_000})
  const raw = (Array.isArray(parsed) ? parsed : [parsed]) as RawLayer[]
  if (raw.length === 0) throw new QemuImgError('failed', 'qemu-img reported no image')
  return raw.map(toLayer)
}

export interface ConvertRequest {
  src: string
  srcFormat: DiskFormat
  dest: string
  destFormat: 'qcow2' | 'raw'
  /** `-S SIZE`: runs of zeroes this long become holes (vagrant-mutate uses 16k). */
  sparse?: string
  /** `-o` options of the output format, e.g. `compat=1.1`. */
  options?: string[]
  /**
   * Host cache modes (`-t` for the target, `-T` for the source). qemu-img 7.2 converts with
   * `-t unsafe` and `-T writeback` unless told: the whole written image then sits in the page
   * cache as dirty pages (757 MiB for the test box's 577 MiB qcow2), however little qemu-img's
   * own RSS is (9 MiB). `none` is O_DIRECT: no page cache for that file.
   */
  cache?: {target?: CacheMode; source?: CacheMode}
  signal?: AbortSignal
  onPercent?: (percent: number) => void
  as?: RunAs
  env?: 'clean' | 'user'
}

/** qemu's cache modes as qemu-img's `-t` and `-T` take them. */
export type CacheMode = 'none' | 'writeback' | 'writethrough' | 'directsync' | 'unsafe'

/** `qemu-img convert -p -f SRC -O DEST`, reporting qemu-img's own percentage as it goes. */
export async function qemuImgConvert(r: ConvertRequest): Promise<void> {
  const args = [
    'convert', '-p', '-f', r.srcFormat, '-O', r.destFormat,
    ...(r.cache?.target ? ['-t', r.cache.target] : []),
    ...(r.cache?.source ? ['-T', r.cache.source] : []),
    ...(r.sparse ? ['-S', r.sparse] : []),
    ...(r.options?.length ? ['-o', r.options.join(',')] : []),
    r.src, r.dest,
  ]
  let stderr = ''
  const result = await runStreaming('qemu-img', args, {
    signal: r.signal,
    as: r.as,
    env: r.env,
    output: (text) => {
      const percent = lastPercent(text)
      if (percent === undefined) stderr = (stderr + text).slice(-4000)
      else r.onPercent?.(percent)
    },
  })
  if (result.exitCode !== 0) throw new QemuImgError(failureOf(stderr || result.tail, result.timedOut), qemuLine(stderr || result.tail))
}

/** The line of qemu-img's stderr that says why it failed, without its progress figures. */
export function qemuLine(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l.length > 0 && lastPercent(l) === undefined)
  return (lines.at(-1) ?? firstErrorLine(stderr)).replace(/^qemu-img:\s*/, '')
}

interface RawLayer {
  filename?: unknown
  format?: unknown
  'virtual-size'?: unknown
  'actual-size'?: unknown
  'full-backing-filename'?: unknown
  'backing-filename-format'?: unknown
  'format-specific'?: {data?: {'data-file'?: unknown}}
}

function toLayer(raw: RawLayer): ImageLayer {
  const text = (v: unknown) => (typeof v === 'string' ? v : undefined)
  const dataFile = raw['format-specific']?.data?.['data-file']
  return {
    filename: text(raw.filename) ?? '',
    format: text(raw.format) ?? 'unknown',
    virtualSize: typeof raw['virtual-size'] === 'number' ? raw['virtual-size'] : 0,
    ...(typeof raw['actual-size'] === 'number' ? {actualSize: raw['actual-size']} : {}),
    backingFile: text(raw['full-backing-filename']),
    backingFormat: text(raw['backing-filename-format']),
    // Any value at all counts: an empty or odd data-file entry is still not a plain image.
    dataFile: dataFile === undefined ? undefined : String(dataFile),
  }
}

export interface OverlayRequest {
  /** The new image; it must not exist. */
  path: string
  /** The absolute path of the qcow2 it is based on. */
  backing: string
  /** Its virtual size in bytes (at least the backing file's). */
  size: number
  signal?: AbortSignal
  as?: RunAs
}

/**
 * `qemu-img create -f qcow2 -b BACKING -F qcow2 PATH SIZE`: a qcow2 overlay whose header names
 * the backing file's format, so nothing that opens it later probes the base's content.
 */
export async function qemuImgCreateOverlay(r: OverlayRequest): Promise<void> {
  const args = ['create', '-q', '-f', 'qcow2', '-o', 'compat=1.1', '-b', r.backing, '-F', 'qcow2', r.path, String(r.size)]
  const result = await runTool('qemu-img', args, {signal: r.signal, as: r.as, timeoutMs: 120_000})
  if (result.exitCode !== 0) throw new QemuImgError(failureOf(result.stderr, result.timedOut), qemuLine(result.stderr))
}
