import {describe, expect, it} from 'vitest'

import {zeroBlocks} from '../../../src/delta/image-manifest.js'
import {BLOCK_SIZE} from '../../../src/delta/manifest.js'

const B = BLOCK_SIZE

describe('zeroBlocks (which blocks of a qemu-img map window need no reading)', () => {
  it('marks a block zero only when zero ranges cover all of it', () => {
    const ranges = [
      {start: 0, length: B + 512, zero: true, data: false},
      {start: B + 512, length: B - 512, zero: false, data: true},
      {start: 2 * B, length: B / 2, zero: true, data: false},
      {start: 2 * B + B / 2, length: B / 2, zero: true, data: true},
    ]
    expect([...zeroBlocks(ranges, 0, 3 * B, 10 * B)]).toEqual([1, 0, 1])
  })

  it('reads what the map leaves out, and counts a short last block by its own length', () => {
    expect([...zeroBlocks([{start: 0, length: B, zero: true, data: false}], 0, 2 * B, 2 * B)]).toEqual([1, 0])
    const size = 4 * B + 1536
    expect([...zeroBlocks([{start: 3 * B, length: B + 1536, zero: true, data: false}], 3 * B, B + 1536, size)]).toEqual([1, 1])
  })

  it('clips ranges to the window', () => {
    expect([...zeroBlocks([{start: 0, length: 10 * B, zero: true, data: false}], 4 * B, 2 * B, 10 * B)]).toEqual([1, 1])
  })
})
