import {execFile} from 'node:child_process'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {formatBoxInfo} from '../../../src/box/format-info.js'
import {inspectBox} from '../../../src/box/inspect.js'
import {ShienError} from '../../../src/errors.js'
import {makeBox, makeVmdk, tempDir, type TarEntry} from '../../support/make-box.js'
import {asEntries, configPvs, convertRaw, diskDescriptor, patternRaw, providerBox, vmx} from '../../support/provider-boxes.js'

const run = promisify(execFile)
const fixtures = join(import.meta.dirname, '../../fixtures')

let dir: string
let cleanup: () => Promise<void>
let raw: string
let split: Map<string, Buffer>
let mono: Map<string, Buffer>
let hds: Buffer
let qcow2: Buffer
let stream: Buffer
beforeAll(async () => {
  ;({dir, cleanup} = await tempDir())
  raw = await patternRaw(dir, 'disk.raw')
  // Past 2 GiB, so the split VMDK has two extents.
  const big = await patternRaw(dir, 'big.raw', 3 * 1024 * 1024, 2200 * 1024 * 1024)
  await run('mkdir', [join(dir, 'split'), join(dir, 'mono'), join(dir, 'other')])
  split = await convertRaw(big, join(dir, 'split'), 'disk.vmdk', 'vmdk', 'twoGbMaxExtentSparse')
  mono = await convertRaw(raw, join(dir, 'mono'), 'disk.vmdk', 'vmdk', 'monolithicSparse')
  hds = (await convertRaw(raw, join(dir, 'other'), 'harddisk.hdd.0.{5fbaabe3-6958-40ff-92a7-860e329aab41}.hds', 'parallels')).values().next().value!
  qcow2 = (await convertRaw(raw, join(dir, 'other'), 'box.img', 'qcow2')).values().next().value!
  stream = await readFile(await makeVmdk(join(dir, 'other'), 'box-disk001.vmdk'))
}, 60_000)
afterAll(() => cleanup())

let boxes = 0
const name = () => `p${boxes++}.box`
const HDD = 'box.pvm/harddisk.hdd'
const IMAGE = 'harddisk.hdd.0.{5fbaabe3-6958-40ff-92a7-860e329aab41}.hds'
const SECTORS = 3 * 2048

function vmwareBox(files: Map<string, Buffer>, vmxText: string, metadata: Record<string, unknown> = {provider: 'vmware_desktop'}) {
  return providerBox(dir, name(), metadata, [{name: 'debian12.vmx', body: vmxText}, ...asEntries(files)])
}

function parallelsBox(descriptor: string, metadata: Record<string, unknown> = {provider: 'parallels', architecture: 'arm64'}, extra: TarEntry[] = []) {
  return providerBox(dir, name(), metadata, [
    {name: 'box.pvm/', type: 'directory'}, {name: 'box.pvm/config.pvs', body: configPvs(true)},
    {name: `${HDD}/`, type: 'directory'}, {name: `${HDD}/DiskDescriptor.xml`, body: descriptor}, {name: `${HDD}/${IMAGE}`, body: hds}, ...extra,
  ])
}

function descriptorText(extents: string[]): Buffer {
  return Buffer.from(['# Disk DescriptorFile', 'version=1', 'CID=2ca54069', 'parentCID=ffffffff', 'createType="twoGbMaxExtentSparse"', '', ...extents, '', 'ddb.adapterType = "lsilogic"', ''].join('\n'))
}

async function refusal(path: string): Promise<ShienError> {
  const error = await inspectBox(path).then(() => undefined, (e: unknown) => e)
  expect(error).toBeInstanceOf(ShienError)
  expect((error as ShienError).exitCode).toBe(3)
  return error as ShienError
}

describe('inspectBox takes every provider\'s box as vagrant package writes it', () => {
  it('VMware, arm64, split VMDK (twoGbMaxExtentSparse) with two extents', async () => {
    const info = await inspectBox(await vmwareBox(split, vmx({guestOS: 'arm-debian12-64', disk: 'disk.vmdk'}), {provider: 'vmware_desktop', architecture: 'arm64'}))
    expect(info).toMatchObject({provider: 'vmware_desktop', architecture: 'arm64', firmware: 'efi', configEntry: 'debian12.vmx', machine: {cpus: 2, memoryMiB: 2048, osType: 'arm-debian12-64'}})
    expect(info.architectureClaims.map((c) => c.source)).toEqual(['metadata.json ("architecture": "arm64")', 'debian12.vmx (guestOS "arm-debian12-64")'])
    expect(info).not.toHaveProperty('claims')
    // Fusion writes firmware = "efi" for Arm machines; without it, an Arm machine still boots UEFI.
    const unsaid = await inspectBox(await vmwareBox(split, vmx({guestOS: 'arm-debian12-64', disk: 'disk.vmdk', firmware: 'bios'})))
    expect(unsaid.firmware).toBe('efi')
    expect(info.disks).toHaveLength(1)
    expect(info.disks[0]).toMatchObject({diskId: 'nvme0:0', entry: 'disk.vmdk', format: 'vmdk', subformat: 'twoGbMaxExtentSparse', capacityBytes: 2201 * 1024 * 1024, files: ['disk.vmdk', 'disk-s001.vmdk', 'disk-s002.vmdk']})
    const text = formatBoxInfo(info)
    for (const line of ['Provider  vmware_desktop', 'Arch      arm64 (metadata.json', 'EFI firmware', 'disk.vmdk (+2 extents)', 'vmdk twoGbMaxExtentSparse']) expect(text).toContain(line)
  })

  it('VMware, amd64, monolithicSparse VMDK, BIOS: the architecture comes from guestOS alone; macOS ._ files are ignored', async () => {
    const files = new Map([...mono, ['._debian12.vmx', Buffer.from('AppleDouble extended attributes')], ['._disk.vmdk', Buffer.alloc(4096)]])
    const info = await inspectBox(await vmwareBox(files, vmx({guestOS: 'debian12-64', disk: 'disk.vmdk', firmware: 'bios', device: 'scsi0:0'})))
    expect(info).toMatchObject({provider: 'vmware_desktop', architecture: 'amd64', firmware: 'bios'})
    expect(info.disks[0]).toMatchObject({diskId: 'scsi0:0', subformat: 'monolithicSparse', capacityBytes: 3 * 1024 * 1024, files: ['disk.vmdk']})
  })

  it('Parallels: a .pvm bundle whose .hdd descriptor names its expanding image', async () => {
    const info = await inspectBox(await parallelsBox(diskDescriptor(IMAGE, SECTORS)))
    expect(info).toMatchObject({provider: 'parallels', architecture: 'arm64', firmware: 'efi', configEntry: 'box.pvm/config.pvs', machine: {name: 'debian12'}, warnings: []})
    expect(info.disks[0]).toMatchObject({diskId: 'harddisk.hdd', entry: `${HDD}/${IMAGE}`, format: 'parallels', capacityBytes: 3 * 1024 * 1024, files: [`${HDD}/DiskDescriptor.xml`, `${HDD}/${IMAGE}`]})
  })

  it.each(['libvirt', 'qemu'])('%s: a standalone qcow2 box.img', async (provider) => {
    const info = await inspectBox(await providerBox(dir, name(), {provider, format: 'qcow2', virtual_size: 1, architecture: 'amd64'}, [{name: 'box.img', body: qcow2}]))
    expect(info).toMatchObject({provider, architecture: 'amd64', firmware: undefined, configEntry: undefined, warnings: []})
    expect(info.disks[0]).toMatchObject({entry: 'box.img', format: 'qcow2', capacityBytes: 3 * 1024 * 1024})
    expect(formatBoxInfo(info)).toContain('firmware not declared')
  })

  it('VirtualBox 7.1 on Apple Silicon: arm64 from <Platform architecture="ARM"> and the OS type, EFI', async () => {
    const ovf = await readFile(join(fixtures, 'vbox71/box-arm64.ovf'), 'utf8')
    const info = await inspectBox(await makeBox(dir, name(), {ovf, disks: [{name: 'box-disk001.vmdk', bytes: stream}], metadata: {provider: 'virtualbox', architecture: 'arm64'}}))
    expect(info).toMatchObject({provider: 'virtualbox', architecture: 'arm64', firmware: 'efi', ovf: {platform: 'ARM', osType: 'Debian12_arm64'}})
    expect(info.architectureClaims.map((c) => c.source)).toEqual([
      'metadata.json ("architecture": "arm64")', 'box.ovf (<Platform architecture="ARM">)', 'box.ovf (OS type Debian12_arm64)',
    ])
    expect(info.disks[0]).toMatchObject({format: 'vmdk', subformat: 'streamOptimized', controller: {kind: 'sata'}})
  })

  it('VirtualBox on x86 (a real export): amd64 from its OS type', async () => {
    const ovf = await readFile(join(fixtures, 'real/ovf-s1.16-macosx-ubuntu1604-disk001-box.ovf'), 'utf8')
    const disk = await readFile(await makeVmdk(join(dir, 'other'), 'ubuntu-16.04-amd64-disk001.vmdk'))
    const info = await inspectBox(await makeBox(dir, name(), {ovf, disks: [{name: 'ubuntu-16.04-amd64-disk001.vmdk', bytes: disk}]}))
    expect(info).toMatchObject({provider: 'virtualbox', architecture: 'amd64', firmware: 'bios'})
    expect(info.warnings[0]).toContain('the OVF says 68719476736 bytes')
  })
})

describe('inspectBox refusals for the new formats', () => {
  it.each([['/etc/shadow'], ['../x.vmdk'], ['sub/disk.vmdk']])('VMX_BAD_DISK when the VMX attaches %s', async (disk) => {
    const error = await refusal(await vmwareBox(mono, vmx({guestOS: 'debian12-64', disk})))
    expect(error.code).toBe('VMX_BAD_DISK')
    expect(error.message).toContain(`"${disk}"`)
  })

  it.each([
    ['names /etc/shadow', 'RW 2048 SPARSE "/etc/shadow"', 'not a file beside the descriptor'],
    ['names ../x', 'RW 2048 SPARSE "../x"', 'not a file beside the descriptor'],
    ['has a FLAT extent', 'RW 6144 FLAT "disk-flat.vmdk" 0', 'not a SPARSE extent'],
    ['has a ZERO extent', 'RW 6144 ZERO', 'not a SPARSE extent'],
  ])('VMDK_BAD_EXTENT when a split descriptor %s', async (_what, extent, why) => {
    const files = new Map(split)
    files.set('disk.vmdk', descriptorText([extent]))
    files.set('disk-flat.vmdk', Buffer.alloc(6144 * 512))
    const error = await refusal(await vmwareBox(files, vmx({guestOS: 'debian12-64', disk: 'disk.vmdk'})))
    expect(error.code).toBe('VMDK_BAD_EXTENT')
    expect(error.message).toContain(why)
  })

  it('VMDK_BAD_EXTENT when a split descriptor lists an extent twice', async () => {
    const files = new Map(split)
    files.set('disk.vmdk', descriptorText(['RW 4194304 SPARSE "disk-s001.vmdk"', 'RW 4194304 SPARSE "disk-s001.vmdk"']))
    const error = await refusal(await vmwareBox(files, vmx({guestOS: 'debian12-64', disk: 'disk.vmdk'})))
    expect(error.code).toBe('VMDK_BAD_EXTENT')
    expect(error.message).toContain('lists the extent "disk-s001.vmdk" twice')
  })

  it('VMDK_BAD_EXTENT when an extent is a text file, and VMDK_HAS_PARENT for a delta descriptor', async () => {
    const files = new Map(split)
    files.set('disk-s002.vmdk', descriptorText(['RW 2048 FLAT "/etc/shadow" 0']))
    expect((await refusal(await vmwareBox(files, vmx({guestOS: 'debian12-64', disk: 'disk.vmdk'})))).message).toContain('not a binary sparse extent')
    const delta = new Map(split)
    delta.set('disk.vmdk', Buffer.from(descriptorText(['RW 4194304 SPARSE "disk-s001.vmdk"']).toString().replace('parentCID=ffffffff', 'parentCID=12345678\nparentFileNameHint="/etc/base.vmdk"')))
    expect((await refusal(await vmwareBox(delta, vmx({guestOS: 'debian12-64', disk: 'disk.vmdk'})))).code).toBe('VMDK_HAS_PARENT')
  })

  it('VMDK_BAD_EXTENT for an extent of capacity 0, which qemu would open as a descriptor of its own', async () => {
    // A sparse extent whose header says 0 sectors and whose embedded descriptor points at /etc/shadow.
    const extent = Buffer.from(mono.get('disk.vmdk')!)
    extent.writeBigUInt64LE(0n, 12)
    const embedded = Number(extent.readBigUInt64LE(28)) * 512
    extent.fill(0, embedded, embedded + 1024)
    extent.write('# Disk DescriptorFile\nparentCID=ffffffff\ncreateType="monolithicFlat"\nRW 6144 FLAT "/etc/shadow" 0\n', embedded, 'latin1')
    const files = new Map([['disk.vmdk', descriptorText(['RW 6144 SPARSE "disk-s001.vmdk"'])], ['disk-s001.vmdk', extent]])
    const error = await refusal(await vmwareBox(files, vmx({guestOS: 'debian12-64', disk: 'disk.vmdk'})))
    expect(error.code).toBe('VMDK_BAD_EXTENT')
    expect(error.message).toContain('its extent disk-s001.vmdk holds 0 sectors but the descriptor says 6144')
  })

  it('VMDK_NOT_SPARSE for a single-file VMDK of capacity 0', async () => {
    const zero = Buffer.from(stream)
    zero.writeBigUInt64LE(0n, 12)
    const error = await refusal(await makeBox(dir, name(), {disks: [{name: 'box-disk001.vmdk', bytes: zero}]}))
    expect(error.code).toBe('VMDK_NOT_SPARSE')
    expect(error.message).toContain('capacity of 0')
  })

  it('VMX_MALFORMED for a key set twice (the second could name another disk) or a line that is not key = "value"', async () => {
    const twice = vmx({guestOS: 'debian12-64', disk: 'disk.vmdk', extra: ['nvme0:0.fileName = "other.vmdk"']})
    expect((await refusal(await vmwareBox(mono, twice))).message).toContain('sets nvme0:0.fileName twice')
    expect((await refusal(await vmwareBox(mono, vmx({guestOS: 'debian12-64', disk: 'disk.vmdk', extra: ['<html>']})))).code).toBe('VMX_MALFORMED')
  })

  it.each([['/etc/shadow'], ['../../../etc/shadow'], ['../other.hdd/x.hds']])('PARALLELS_BAD_IMAGE_PATH when DiskDescriptor.xml names %s', async (file) => {
    const error = await refusal(await parallelsBox(diskDescriptor(file, SECTORS)))
    expect(error.code).toBe('PARALLELS_BAD_IMAGE_PATH')
    expect(error.message).toContain(`"${file}"`)
  })

  it('PARALLELS_BAD_DESCRIPTOR for a chain of images, OVF_DOCTYPE for entities, PARALLELS_NOT_EXPANDING for a plain image', async () => {
    expect((await refusal(await parallelsBox(diskDescriptor(IMAGE, SECTORS, {extraImage: 'second.hds'})))).code).toBe('PARALLELS_BAD_DESCRIPTOR')
    expect((await refusal(await parallelsBox(diskDescriptor(IMAGE, SECTORS, {parent: '{11111111-0000-4000-8000-000000000000}'})))).code).toBe('PARALLELS_BAD_DESCRIPTOR')
    const entity = diskDescriptor('&x;', SECTORS).replace('<Parallels_disk_image', '<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/shadow">]>\n<Parallels_disk_image')
    expect((await refusal(await parallelsBox(entity))).code).toBe('OVF_DOCTYPE')
    const plain = await providerBox(dir, name(), {provider: 'parallels'}, [
      {name: 'box.pvm/config.pvs', body: configPvs(false)}, {name: `${HDD}/DiskDescriptor.xml`, body: diskDescriptor('plain.hds', SECTORS)}, {name: `${HDD}/plain.hds`, body: await readFile(raw)},
    ])
    expect((await refusal(plain)).code).toBe('PARALLELS_NOT_EXPANDING')
  })

  it('QCOW2_BACKING_FILE and QCOW2_DATA_FILE for a box.img that reads another file', async () => {
    await run('qemu-img', ['create', '-f', 'qcow2', '-b', '/etc/shadow', '-F', 'raw', join(dir, 'backed.img'), '3M'])
    await run('qemu-img', ['create', '-f', 'qcow2', '-o', `data_file=${join(dir, 'outside.raw')}`, join(dir, 'datafile.img'), '3M'])
    const backed = await providerBox(dir, name(), {provider: 'libvirt'}, [{name: 'box.img', body: await readFile(join(dir, 'backed.img'))}])
    const error = await refusal(backed)
    expect(error.code).toBe('QCOW2_BACKING_FILE')
    expect(error.message).toContain('backing file')
    const data = await providerBox(dir, name(), {provider: 'libvirt'}, [{name: 'box.img', body: await readFile(join(dir, 'datafile.img'))}])
    expect((await refusal(data)).code).toBe('QCOW2_DATA_FILE')
  })

  it('BOX_ARCH_CONFLICT for an arm64 box labelled amd64, saying both', async () => {
    const ovf = await readFile(join(fixtures, 'vbox71/box-arm64.ovf'), 'utf8')
    const vbox = await refusal(await makeBox(dir, name(), {ovf, disks: [{name: 'box-disk001.vmdk', bytes: stream}], metadata: {provider: 'virtualbox', architecture: 'amd64'}}))
    expect(vbox.code).toBe('BOX_ARCH_CONFLICT')
    expect(vbox.message).toBe('The box contradicts itself: metadata.json ("architecture": "amd64") says amd64, but box.ovf (<Platform architecture="ARM">) says arm64.')
    const vmware = await refusal(await vmwareBox(mono, vmx({guestOS: 'arm-debian12-64', disk: 'disk.vmdk'}), {provider: 'vmware_desktop', architecture: 'amd64'}))
    expect(vmware.code).toBe('BOX_ARCH_CONFLICT')
    expect(vmware.message).toContain('debian12.vmx (guestOS "arm-debian12-64") says arm64')
  })

  it('BOX_PROVIDER_MISMATCH for a qcow2 box labelled virtualbox, BOX_UNKNOWN_FORMAT for a box of nothing shien takes', async () => {
    const mislabelled = await refusal(await providerBox(dir, name(), {provider: 'virtualbox'}, [{name: 'box.img', body: qcow2}]))
    expect(mislabelled.code).toBe('BOX_PROVIDER_MISMATCH')
    expect(mislabelled.message).toContain('holds a libvirt machine (box.img)')
    expect((await refusal(await providerBox(dir, name(), {provider: 'libvirt'}, [{name: 'disk.vhdx', body: 'x'}]))).code).toBe('BOX_UNKNOWN_FORMAT')
  })
})
