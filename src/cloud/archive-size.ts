import {ShienError} from '../errors.js'

/** The archive sizes Sakura Cloud offers for an uploaded image, in GiB. */
export const ARCHIVE_SIZES_GIB = [20, 40, 60, 80, 100, 250, 500, 750, 1024] as const

const GIB = 2 ** 30

/**
 * The smallest archive that holds a disk of `virtualBytes`, as `SizeMB` (GiB x 1024).
 * A disk larger than the largest archive is refused here, before any API call.
 */
export function archiveSizeFor(virtualBytes: number, what: string): {sizeGiB: number; sizeMB: number} {
  const sizeGiB = ARCHIVE_SIZES_GIB.find((gib) => gib * GIB >= virtualBytes)
  if (sizeGiB === undefined) {
    const largest = ARCHIVE_SIZES_GIB[ARCHIVE_SIZES_GIB.length - 1]
    throw new ShienError(
      `${what} is a ${(virtualBytes / GIB).toFixed(1)} GiB disk; a Sakura Cloud archive holds at most ${largest} GiB.`,
      {
        code: 'CLOUD_IMAGE_TOO_LARGE',
        exit: 'badInput',
        suggestions: [`Shrink the disk below ${largest} GiB (qemu-img resize --shrink, after shrinking its file systems).`],
      },
    )
  }
  return {sizeGiB, sizeMB: sizeGiB * 1024}
}
