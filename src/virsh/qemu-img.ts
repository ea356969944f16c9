import {badInput} from '../errors.js'
import {firstErrorLine, runTool, type RunAs} from './exec.js'

/** One image of a backing chain as `qemu-img info --backing-chain` reports it. */
export interface ImageLayer {
  filename: string
  format: string
  virtualSize: number
  /** Where qemu resolved the backing file to (absolute), when there is one. */
  backingFile?: string
  /** The backing format the header declares; absent means qemu would probe it. */
  backingFormat?: string
  /** An external data file named in the qcow2 header. */
  dataFile?: string
}

interface RawLayer {
  filename?: unknown
  format?: unknown
  'virtual-size'?: unknown
  'full-backing-filename'?: unknown
  'backing-filename-format'?: unknown
  'format-specific'?: {data?: {'data-file'?: unknown}}
}

/**
 * Reads an image and its backing chain with qemu-img, run as the image's owner: the owner can
 * swap the file after ie-virsh read its header, and qemu-img then opens whatever the new header
 * names (a device, a FIFO, another student's image, a `json:` driver), with the owner's rights
 * only. `-f qcow2` always: qemu-img must never guess the top image's format (a raw file can
 * contain a valid-looking qcow2 header).
 */
export async function inspectChain(path: string, o: {signal: AbortSignal; as: RunAs}): Promise<ImageLayer[]> {
  const r = await runTool('qemu-img', ['info', '--output=json', '--backing-chain', '-f', 'qcow2', path], {
    signal: o.signal,
    timeoutMs: 60_000,
    as: o.as,
  })
  if (r.exitCode !== 0) {
    const reason = r.timedOut ? 'qemu-img timed out' : firstErrorLine(r.stderr).replace(/^qemu-img:\s*/, '')
    throw badInput('IMAGE_UNREADABLE', `qemu-img cannot read ${path}: ${reason}.`)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(r.stdout)
  } catch {
    throw badInput('IMAGE_UNREADABLE', `qemu-img printed something other than JSON for ${path}.`)
  }
  if (!Array.isArray(parsed) || parsed.length === 0) {
    throw badInput('IMAGE_UNREADABLE', `qemu-img reported no image for ${path}.`)
  }
  return (parsed as RawLayer[]).map(toLayer)
}

function toLayer(raw: RawLayer): ImageLayer {
  const text = (v: unknown) => (typeof v === 'string' ? v : undefined)
  const dataFile = raw['format-specific']?.data?.['data-file']
  return {
    filename: text(raw.filename) ?? '',
    format: text(raw.format) ?? 'unknown',
    virtualSize: typeof raw['virtual-size'] === 'number' ? raw['virtual-size'] : 0,
    backingFile: text(raw['full-backing-filename']),
    backingFormat: text(raw['backing-filename-format']),
    // Any value at all counts: an empty or odd data-file entry is still not a plain image.
    dataFile: dataFile === undefined ? undefined : String(dataFile),
  }
}
