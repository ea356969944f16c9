import {describe, expect, it} from 'vitest'

import {ARCHIVE_SIZES_GIB, archiveSizeFor} from '../../../src/cloud/archive-size.js'

const GIB = 2 ** 30

describe('archiveSizeFor', () => {
  it('picks the smallest archive that holds the disk, as SizeMB = GiB x 1024', () => {
    expect(archiveSizeFor(1, 'x')).toEqual({sizeGiB: 20, sizeMB: 20480})
    expect(archiveSizeFor(20 * GIB, 'x')).toEqual({sizeGiB: 20, sizeMB: 20480})
    expect(archiveSizeFor(20 * GIB + 1, 'x')).toEqual({sizeGiB: 40, sizeMB: 40960})
    expect(archiveSizeFor(101 * GIB, 'x')).toEqual({sizeGiB: 250, sizeMB: 256000})
    expect(archiveSizeFor(1024 * GIB, 'x')).toEqual({sizeGiB: 1024, sizeMB: 1048576})
  })

  it('offers exactly the sizes Sakura Cloud has', () => {
    expect([...ARCHIVE_SIZES_GIB]).toEqual([20, 40, 60, 80, 100, 250, 500, 750, 1024])
  })

  it('refuses a disk larger than 1024 GiB as bad input (exit 3)', () => {
    expect(() => archiveSizeFor(1024 * GIB + 1, 'big.qcow2')).toThrow(/big\.qcow2 is a 1024\.0 GiB disk; a Sakura Cloud archive holds at most 1024 GiB/)
    expect(() => archiveSizeFor(2000 * GIB, 'big.qcow2')).toThrow(expect.objectContaining({code: 'CLOUD_IMAGE_TOO_LARGE', exitCode: 3}))
  })
})
