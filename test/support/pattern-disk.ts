// A raw disk with a known pattern, and the images qemu-img makes of it, for the delta tests
// and bench: data blocks, zero runs (holes and written zeroes), a block with one byte set,
// data that straddles blocks, and a last block shorter than 64 KiB.
import {execFile} from 'node:child_process'
import {open} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

const run = promisify(execFile)
const K = 1024
const M = 1024 * K

/** Where each kind of content sits, so tests can name the blocks they expect. */
export const PATTERN = {
  /** 10 MiB and 3 sectors: the last block is 1536 bytes. */
  size: 10 * M + 1536,
  /** Written zeroes inside allocated space: zero by content although stored as data. */
  writtenZero: {offset: 3 * M, length: 128 * K},
  /** One non-zero byte in an otherwise zero block. */
  oneByte: 4 * M + 4321,
  /** Data starting mid-block and spanning two blocks. */
  straddle: {offset: 5 * M + 100, length: 70_000},
} as const

/** Writes the pattern disk (sparse where it is zero) and returns its path. */
export async function writePatternDisk(dir: string, name = 'pattern.raw', size: number = PATTERN.size): Promise<string> {
  const path = join(dir, name)
  const f = await open(path, 'w')
  try {
    await f.truncate(size)
    let seed = 1
    const noise = (n: number) => {
      const b = Buffer.alloc(n)
      for (let i = 0; i < n; i++) {
        seed = (seed * 1103515245 + 12345) >>> 0
        b[i] = seed >>> 24
      }
      return b
    }
    await f.write(noise(200_000), 0, 200_000, 0)
    await f.write(noise(256 * K), 0, 256 * K, 2 * M + 512 * K)
    await f.write(Buffer.alloc(PATTERN.writtenZero.length), 0, PATTERN.writtenZero.length, PATTERN.writtenZero.offset)
    await f.write(Buffer.from([0x5a]), 0, 1, PATTERN.oneByte)
    await f.write(Buffer.alloc(PATTERN.straddle.length, 0x78), 0, PATTERN.straddle.length, PATTERN.straddle.offset)
    await f.write(Buffer.alloc(700, 0x79), 0, 700, size - 700)
  } finally {
    await f.close()
  }
  return path
}

/**
 * `qemu-img convert -f raw` of a raw disk into `dest` (VMDKs name their own file in their
 * extent). `allocateAll` (`-S 0`) stores zero blocks as data too.
 */
export async function convertRaw(
  raw: string, dest: string, format: 'qcow2' | 'vmdk',
  o: {subformat?: 'streamOptimized' | 'monolithicSparse'; allocateAll?: boolean} = {},
): Promise<string> {
  const options = [...(o.subformat ? ['-o', `subformat=${o.subformat}`] : []), ...(o.allocateAll ? ['-S', '0'] : [])]
  await run('qemu-img', ['convert', '-f', 'raw', '-O', format, ...options, raw, dest])
  return dest
}
