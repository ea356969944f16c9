import type {BlockManifest} from '../delta/manifest.js'
import type {HashedBlock} from '../delta/manifest-builder.js'

/** One 64 KiB block of a virtual disk as a disk reader yields it, in virtual-disk order. */
export interface DiskBlock extends HashedBlock {
  /** The block's bytes (`length` of them); absent for a zero block. */
  data?: Buffer
  /**
   * For a grain a streamOptimized VMDK stores deflated: its zlib stream exactly as stored,
   * which inflates to `data`, so a sender can forward it without compressing again.
   */
  deflated?: Buffer
}

/** The blocks of a disk, read once, in order; then the manifest of what was read. */
export interface DiskBlocks extends AsyncIterable<DiskBlock> {
  /** The manifest of the disk; only once every block was read (throws before). */
  manifest(): BlockManifest
}

/**
 * Wraps a generator that returns the manifest when it has yielded the last block; `signal`
 * is checked before every block.
 */
export function diskBlocks(read: () => AsyncGenerator<DiskBlock, BlockManifest>, signal?: AbortSignal): DiskBlocks {
  let manifest: BlockManifest | undefined
  let started = false
  return {
    async *[Symbol.asyncIterator]() {
      if (started) throw new Error('The disk is read once; its blocks cannot be read again.')
      started = true
      const blocks = read()
      try {
        for (;;) {
          signal?.throwIfAborted()
          const next = await blocks.next()
          if (next.done) {
            manifest = next.value
            return
          }
          yield next.value
        }
      } finally {
        // Closes the reader's file when the caller stops early or the signal fired.
        await blocks.return(undefined as never)
      }
    },
    manifest() {
      if (!manifest) throw new Error('The disk has not been read to its end yet.')
      return manifest
    },
  }
}
