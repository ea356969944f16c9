import {basename, dirname} from 'node:path'

import {runTool, type RunAs} from '../process/run.js'
import {failureOf, QemuImgError} from './qemu-img.js'

/** One write through qemu's block layer: bytes from a file, or zeroes. */
export type IoWrite =
  | {kind: 'data'; offset: number; length: number; /** Holds exactly `length` bytes. */ file: string}
  | {kind: 'zero'; offset: number; length: number}

export interface IoOptions {
  signal?: AbortSignal
  as?: RunAs
  timeoutMs?: number
}

// qemu-io splits its command lines at blanks, and has no quoting: data files are named by a
// plain name, relative to the folder qemu-io runs in.
const PLAIN_NAME = /^[A-Za-z0-9._-]+$/

/**
 * Writes into a qcow2 image with one `qemu-io -f qcow2` process, its commands on stdin:
 * `write -s FILE OFFSET LENGTH` for data and `write -z OFFSET LENGTH` for zeroes (which hide
 * what a backing file holds there). Succeeds only when qemu-io exited 0 and reported every
 * write, in order, as done in full; otherwise throws QemuImgError with its error line.
 * qemu-io reads past the end of a short `-s` file without complaint: callers must write each
 * data file to exactly its length. The data files are in one folder, which qemu-io runs in, so
 * their names are plain whatever the folder's path holds.
 */
export async function qemuIoWrite(image: string, writes: IoWrite[], o: IoOptions = {}): Promise<void> {
  if (writes.length === 0) return
  const folders = new Set(writes.flatMap((w) => (w.kind === 'data' ? [dirname(w.file)] : [])))
  if (folders.size > 1) throw new RangeError(`qemu-io's data files must be in one folder, not ${[...folders].join(', ')}.`)
  const [cwd] = folders
  const lines = writes.map((w) => {
    if (!Number.isSafeInteger(w.offset) || !Number.isSafeInteger(w.length) || w.offset < 0 || w.length <= 0) throw new RangeError(`A write of ${w.length} bytes at ${w.offset}.`)
    if (w.kind === 'zero') return `write -z ${w.offset} ${w.length}`
    const name = basename(w.file)
    if (!PLAIN_NAME.test(name)) throw new RangeError(`qemu-io cannot be given the file name ${name}.`)
    return `write -s ${name} ${w.offset} ${w.length}`
  })
  const r = await runTool('qemu-io', ['-f', 'qcow2', image], {
    input: lines.join('\n') + '\n', cwd, signal: o.signal, as: o.as, timeoutMs: o.timeoutMs ?? 600_000,
  })
  const done = [...r.stdout.matchAll(/^(?:qemu-io> )*wrote (\d+)\/(\d+) bytes at offset (\d+)$/gm)].map((m) => ({done: Number(m[1]), asked: Number(m[2]), offset: Number(m[3])}))
  const allDone = done.length === writes.length && done.every((d, i) => d.done === writes[i].length && d.asked === writes[i].length && d.offset === writes[i].offset)
  if (r.exitCode === 0 && allDone) return
  const error = errorLine(r.stderr + '\n' + r.stdout) ?? (r.exitCode === 0 ? `qemu-io reported ${done.length} of ${writes.length} writes` : `qemu-io exited with ${r.exitCode}`)
  throw new QemuImgError(failureOf(r.stderr + r.stdout, r.timedOut), error)
}

function errorLine(text: string): string | undefined {
  return text.split('\n').map((l) => l.replace(/^(qemu-io> )+/, '').trim()).find((l) => /fail|error|cannot|No such|denied|space/i.test(l))
}
