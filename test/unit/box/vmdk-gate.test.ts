import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {Readable} from 'node:stream'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {readHead} from '../../../src/box/entry-head.js'
import {checkVmdkFile, checkVmdkHeader, vmdkHeadLength} from '../../../src/box/vmdk-gate.js'
import {ShienError} from '../../../src/errors.js'
import {makeVmdk, tempDir, textDescriptorVmdk} from '../../support/make-box.js'
import {rejection} from '../../support/refusal.js'

let dir: string
let cleanup: () => Promise<void>
let streamOptimized: string
let monolithicSparse: string

beforeAll(async () => {
  ;({dir, cleanup} = await tempDir())
  streamOptimized = await makeVmdk(dir, 'so.vmdk', 'streamOptimized', 2)
  monolithicSparse = await makeVmdk(dir, 'ms.vmdk', 'monolithicSparse', 1)
})
afterAll(() => cleanup())


/** A copy of a qemu-img sparse VMDK with its embedded descriptor text rewritten. */
async function editDescriptor(source: string, name: string, edit: (text: string) => string): Promise<string> {
  const bytes = await readFile(source)
  const start = Number(bytes.readBigUInt64LE(28)) * 512
  const length = Number(bytes.readBigUInt64LE(36)) * 512
  const text = bytes.subarray(start, start + length).toString('latin1').split('\0')[0]
  const edited = Buffer.from(edit(text), 'latin1')
  expect(edited.length).toBeLessThanOrEqual(length)
  bytes.fill(0, start, start + length)
  edited.copy(bytes, start)
  const out = join(dir, name)
  await writeFile(out, bytes)
  return out
}

describe('VMDK gate accepts what VirtualBox and qemu-img write', () => {
  it('accepts a streamOptimized VMDK and reports its capacity and extent', async () => {
    expect(await checkVmdkFile(streamOptimized)).toEqual({
      createType: 'streamOptimized',
      capacityBytes: 2 * 1024 * 1024,
      extent: {access: 'RW', sectors: 4096, type: 'SPARSE', file: 'so.vmdk'},
    })
  })

  it('accepts a monolithicSparse VMDK', async () => {
    const info = await checkVmdkFile(monolithicSparse)
    expect(info.createType).toBe('monolithicSparse')
    expect(info.capacityBytes).toBe(1024 * 1024)
  })

  it('needs only the header and embedded descriptor, and reads them from a stream', async () => {
    const bytes = await readFile(streamOptimized)
    const want = vmdkHeadLength(bytes.subarray(0, 512))
    expect(want).toBe(21 * 512) // qemu-img: descriptor at sector 1, 20 sectors long
    const chunks = [bytes.subarray(0, 100), bytes.subarray(100, 7000), bytes.subarray(7000)]
    const stream = Readable.from(chunks, {objectMode: false})
    const head = await readHead(stream)
    expect(head.length).toBe(want)
    expect(stream.destroyed).toBe(false)
    expect(checkVmdkHeader(head, 'so.vmdk').createType).toBe('streamOptimized')
  })
})

describe('VMDK gate refusals', () => {
  it('refuses a text descriptor pointing at /etc/shadow, explaining the danger', async () => {
    const path = join(dir, 'evil.vmdk')
    await writeFile(path, textDescriptorVmdk('/etc/shadow'))
    const error = await rejection(checkVmdkFile(path))
    expect(error.code).toBe('VMDK_TEXT_DESCRIPTOR')
    expect(error.message).toContain('evil.vmdk')
    expect(error.message).toMatch(/point at any file/)
  })

  it('refuses the descriptor of a qemu-img monolithicFlat VMDK, and its raw extent', async () => {
    const flat = await makeVmdk(dir, 'mf.vmdk', 'monolithicFlat')
    expect((await rejection(checkVmdkFile(flat))).code).toBe('VMDK_TEXT_DESCRIPTOR')
    const rawExtent = await rejection(checkVmdkFile(join(dir, 'mf-flat.vmdk')))
    expect(rawExtent.code).toBe('VMDK_NOT_SPARSE')
    expect(rawExtent.message).toContain('KDMV')
  })

  it('refuses a sparse VMDK whose embedded extent names another file', async () => {
    const path = await editDescriptor(monolithicSparse, 'renamed.vmdk', (t) => t.replace('"ms.vmdk"', '"/etc/shadow"'))
    const error = await rejection(checkVmdkFile(path))
    expect(error.code).toBe('VMDK_BAD_EXTENT')
    expect(error.message).toContain('/etc/shadow')
  })

  it('refuses an embedded extent that is not its own file name even when the file is renamed', async () => {
    // The descriptor says ms.vmdk, the file is called other.vmdk: qemu would look for ms.vmdk.
    const copy = join(dir, 'other.vmdk')
    await writeFile(copy, await readFile(monolithicSparse))
    expect((await rejection(checkVmdkFile(copy))).code).toBe('VMDK_BAD_EXTENT')
    expect((await checkVmdkFile(copy, 'ms.vmdk')).extent.file).toBe('ms.vmdk')
  })

  it('refuses a FLAT extent, a second extent and a sector count that disagrees with the header', async () => {
    const cases: Array<[string, (t: string) => string]> = [
      ['flat.vmdk', (t) => t.replace('SPARSE "ms.vmdk"', 'FLAT "flat.vmdk" 0')],
      ['two.vmdk', (t) => t.replace('RW 2048 SPARSE "ms.vmdk"', 'RW 2048 SPARSE "two.vmdk"\nRW 2048 FLAT "/dev/sda" 0')],
      ['count.vmdk', (t) => t.replace('RW 2048 SPARSE "ms.vmdk"', 'RW 4096 SPARSE "count.vmdk"')],
    ]
    for (const [name, edit] of cases) {
      const error = await rejection(checkVmdkFile(await editDescriptor(monolithicSparse, name, edit)))
      expect(error.code, name).toBe('VMDK_BAD_EXTENT')
    }
  })

  it('refuses a parent: a parentCID other than ffffffff, or a parentFileNameHint', async () => {
    const own = (t: string) => t.replace('"ms.vmdk"', '"parent.vmdk"')
    const cid = await editDescriptor(monolithicSparse, 'parent.vmdk', (t) => own(t).replace('parentCID=ffffffff', 'parentCID=1234abcd'))
    expect((await rejection(checkVmdkFile(cid))).code).toBe('VMDK_HAS_PARENT')
    const hint = await editDescriptor(monolithicSparse, 'parent.vmdk', (t) => own(t) + 'parentFileNameHint="/home/other/base.vmdk"\n')
    const error = await rejection(checkVmdkFile(hint))
    expect(error.code).toBe('VMDK_HAS_PARENT')
    expect(error.message).toContain('/home/other/base.vmdk')
  })

  it('refuses a parentFileNameHint hidden in a comment, which qemu still finds', async () => {
    const path = await editDescriptor(monolithicSparse, 'ms.vmdk.hidden', (t) => t.replace('# Extent description', '# parentFileNameHint="/etc/shadow"'))
    const error = await rejection(checkVmdkFile(path, 'ms.vmdk'))
    expect(error.code).toBe('VMDK_HAS_PARENT')
    expect(error.message).toContain('/etc/shadow')
  })

  it('refuses an embedded descriptor that fills its sectors with no NUL, so qemu would read on', async () => {
    const bytes = await readFile(monolithicSparse)
    const start = Number(bytes.readBigUInt64LE(28)) * 512
    const end = start + Number(bytes.readBigUInt64LE(36)) * 512
    bytes.fill('#', start + bytes.subarray(start, end).indexOf(0), end)
    const error = (() => {
      try {
        checkVmdkHeader(bytes, 'ms.vmdk')
      } catch (e) {
        return e as ShienError
      }
    })()
    expect(error?.code).toBe('VMDK_NOT_SPARSE')
    expect(error?.message).toContain('NUL')
  })

  it('refuses a sparse file whose createType is not streamOptimized or monolithicSparse', async () => {
    const path = await editDescriptor(monolithicSparse, 'flattype.vmdk', (t) => t.replace('monolithicSparse', 'monolithicFlat').replace('"ms.vmdk"', '"flattype.vmdk"'))
    const error = await rejection(checkVmdkFile(path))
    expect(error.code).toBe('VMDK_NOT_SPARSE')
    expect(error.message).toContain('monolithicFlat')
  })

  it('refuses a KDMV header without an embedded descriptor (a piece of a split VMDK)', async () => {
    const bytes = await readFile(monolithicSparse)
    bytes.writeBigUInt64LE(0n, 28)
    bytes.writeBigUInt64LE(0n, 36)
    expect(() => checkVmdkHeader(bytes, 'ms.vmdk')).toThrow(/no embedded descriptor/)
  })

  it('refuses a head cut short before the end of the descriptor', async () => {
    const bytes = await readFile(monolithicSparse)
    const error = (() => {
      try {
        checkVmdkHeader(bytes.subarray(0, 1024), 'ms.vmdk')
      } catch (e) {
        return e as ShienError
      }
    })()
    expect(error?.code).toBe('VMDK_NOT_SPARSE')
  })
})
