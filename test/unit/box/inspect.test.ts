import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {inspectBox} from '../../../src/box/inspect.js'
import {ShienError} from '../../../src/errors.js'
import {defaultDisk, makeBox, makeOvf, makeVmdk, tempDir, type MakeBoxOptions} from '../../support/make-box.js'

let dir: string
let cleanup: () => Promise<void>
let sparse: Buffer
beforeAll(async () => {
  ;({dir, cleanup} = await tempDir())
  sparse = await readFile(await makeVmdk(dir, 'box-disk002.vmdk', 'monolithicSparse', 2))
})
afterAll(() => cleanup())

let boxes = 0
async function inspect(opts: MakeBoxOptions) {
  return inspectBox(await makeBox(dir, `b${boxes++}.box`, opts))
}

async function refusal(opts: MakeBoxOptions): Promise<ShienError> {
  const error = await inspect(opts).then(() => undefined, (e: unknown) => e)
  expect(error).toBeInstanceOf(ShienError)
  expect((error as ShienError).exitCode).toBe(3)
  return error as ShienError
}

describe('inspectBox on good boxes', () => {
  it('reports a plain box: entries, OVF, provider and the gated disk', async () => {
    const path = await makeBox(dir, 'good.box')
    const info = await inspectBox(path)
    expect(info).toMatchObject({
      path, compression: 'none', ovfEntry: 'box.ovf', provider: 'virtualbox', hasVagrantfile: true, privateKeys: [], warnings: [],
      metadata: {provider: 'virtualbox'},
      ovf: {name: 'test-vm', osType: 'Debian_64', cpus: 2, memoryMiB: 1024, firmware: 'bios'},
    })
    expect(info.bytes).toBe((await readFile(path)).length)
    expect(info.entries.map((e) => e.name)).toEqual(['Vagrantfile', 'box-disk001.vmdk', 'box.ovf', 'metadata.json'])
    expect(info.disks).toHaveLength(1)
    expect(info.disks[0]).toMatchObject({
      diskId: 'vmdisk1', file: 'box-disk001.vmdk', entry: 'box-disk001.vmdk', capacityBytes: 1048576,
      controller: {kind: 'sata'},
      vmdk: {createType: 'streamOptimized', capacityBytes: 1048576, extent: {file: 'box-disk001.vmdk', sectors: 2048}},
    })
  })

  it('reports a gzip box with ./ names, private keys at any depth and two disks', async () => {
    const info = await inspect({
      gzip: true, dotSlash: true, privateKey: true,
      disks: [{name: 'box-disk001.vmdk', bytes: await defaultDisk(dir)}, {name: 'box-disk002.vmdk', bytes: sparse, capacityBytes: 2097152}],
      extra: [{name: 'keys/', type: 'directory'}, {name: 'keys/vagrant_private_key', body: 'secret'}],
    })
    expect(info.compression).toBe('gzip')
    expect(info.privateKeys).toEqual(['vagrant_private_key', 'keys/vagrant_private_key'])
    expect(info.disks.map((d) => [d.entry, d.vmdk.createType, d.vmdk.capacityBytes])).toEqual([
      ['box-disk001.vmdk', 'streamOptimized', 1048576], ['box-disk002.vmdk', 'monolithicSparse', 2097152],
    ])
  })

  it('takes the only OVF when it is not called box.ovf, ignoring macOS AppleDouble files', async () => {
    const ovf = makeOvf([{name: 'box-disk001.vmdk'}])
    const info = await inspect({ovf: false, extra: [{name: '._web.ovf', body: 'Mac OS X xattrs'}, {name: 'web.ovf', body: ovf}]})
    expect(info.ovfEntry).toBe('web.ovf')
    expect(info.disks[0].entry).toBe('box-disk001.vmdk')
  })

  it('warns about an OVF capacity that disagrees with the VMDK, and a box of Vagrant\'s oldest format', async () => {
    const ovf = makeOvf([{name: 'box-disk001.vmdk', capacityBytes: 4096}])
    const info = await inspect({ovf})
    expect(info.warnings).toHaveLength(1)
    expect(info.warnings[0]).toContain('4096')
    const old = await inspect({metadata: false})
    expect(old).toMatchObject({provider: 'virtualbox', metadata: undefined})
    expect(old.warnings[0]).toContain('no metadata.json (Vagrant\'s oldest box format)')
  })
})

describe('inspectBox refusals', () => {
  it('BOX_PROVIDER_MISMATCH when metadata.json names another provider than the box holds', async () => {
    const error = await refusal({metadata: {provider: 'libvirt'}})
    expect(error.code).toBe('BOX_PROVIDER_MISMATCH')
    expect(error.message).toContain('names the provider "libvirt", but the box holds a VirtualBox machine (box.ovf and box-disk001.vmdk)')
    expect((await refusal({metadata: {provider: 'hyperv'}})).code).toBe('BOX_PROVIDER_UNSUPPORTED')
  })

  it('BOX_NO_OVF when there is no OVF', async () => {
    expect((await refusal({ovf: false})).code).toBe('BOX_NO_OVF')
  })

  it('BOX_NO_DISK when the OVF lists no hard disk', async () => {
    const error = await refusal({ovf: makeOvf([])})
    expect(error.code).toBe('BOX_NO_DISK')
  })

  it('BOX_MISSING_DISK when the OVF names a file the box does not have', async () => {
    const error = await refusal({ovf: makeOvf([{name: 'box-disk001.vmdk'}, {name: 'box-disk009.vmdk'}])})
    expect(error.code).toBe('BOX_MISSING_DISK')
    expect(error.message).toContain('box-disk009.vmdk')
  })

  it('VMDK_TEXT_DESCRIPTOR when the disk is a text descriptor aimed at /etc/shadow', async () => {
    const error = await refusal({textDescriptor: '/etc/shadow'})
    expect(error.code).toBe('VMDK_TEXT_DESCRIPTOR')
    expect(error.message).toContain('box-disk001.vmdk')
  })

  it('VMDK_BAD_EXTENT when the disk was renamed inside the box', async () => {
    const error = await refusal({disks: [{name: 'renamed.vmdk', bytes: sparse, capacityBytes: 2097152}]})
    expect(error.code).toBe('VMDK_BAD_EXTENT')
  })

  it('OVF_DOCTYPE when the box OVF declares an entity', async () => {
    const ovf = makeOvf([{name: 'box-disk001.vmdk'}], {prolog: '<!DOCTYPE Envelope [<!ENTITY x "xx">]>\n'})
    expect((await refusal({ovf})).code).toBe('OVF_DOCTYPE')
  })

  it('BOX_UNSAFE_ENTRY and BOX_TRUNCATED come through from the tar reader', async () => {
    expect((await refusal({unsafe: 'symlink'})).code).toBe('BOX_UNSAFE_ENTRY')
    expect((await refusal({extra: [{name: 'disk/../../x', body: ''}]})).code).toBe('BOX_UNSAFE_ENTRY')
    const whole = await readFile(await makeBox(dir, 'whole.box', {gzip: true}))
    const cut = join(dir, 'cut.box')
    await writeFile(cut, whole.subarray(0, whole.length - 200))
    await expect(inspectBox(cut)).rejects.toMatchObject({code: 'BOX_TRUNCATED'})
  })

  it('BOX_BAD_METADATA when metadata.json is not a JSON object', async () => {
    expect((await refusal({metadata: '{"provider": '})).code).toBe('BOX_BAD_METADATA')
    expect((await refusal({metadata: '["virtualbox"]'})).code).toBe('BOX_BAD_METADATA')
  })
})
