import {readFileSync} from 'node:fs'
import {dirname, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {describe, expect, it} from 'vitest'

import {parseOvf} from '../../../src/box/ovf.js'
import {makeOvf} from '../../support/make-box.js'
import {refusal} from '../../support/refusal.js'

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
const realDir = resolve(repoRoot, 'test/fixtures/real')
const real = (name: string) => readFileSync(resolve(realDir, name), 'utf8')


const SATA_DISK = {kind: 'sata', resourceType: 20, subType: 'AHCI'}
const STREAM = 'http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized'

describe('parseOvf on real VirtualBox exports', () => {
  it('reads the 2015 tsuru box, whose File id is the file name', () => {
    const ovf = parseOvf(real('ovf-s1.12-linux-ubuntu-trusty-tsuru-natfwd-box.ovf'))
    expect(ovf).toEqual({
      name: 'ubuntu-cloudimg-trusty-vagrant-amd64', osType: 'Ubuntu_64', cpus: 1, memoryMiB: 512, firmware: 'bios',
      disks: [{diskId: 'vmdisk1', file: 'box-disk.vmdk', capacityBytes: 42949672960, format: STREAM, controller: SATA_DISK, addressOnParent: 0}],
    })
  })

  it('reads the NX-OSv box: 2 CPUs, 8196 MiB, EFI, Machine OSType over the OVF description', () => {
    const ovf = parseOvf(real('ovf-s1.15-macosx-nxosv-efi-uart-box.ovf'))
    expect(ovf).toMatchObject({name: 'edev', osType: 'Linux_64', cpus: 2, memoryMiB: 8196, firmware: 'efi'})
    expect(ovf.disks).toEqual([{diskId: 'vmdisk1', file: 'box-disk1.vmdk', capacityBytes: 4294967296, format: STREAM, controller: SATA_DISK, addressOnParent: 0}])
  })

  it('reads the Ubuntu 16.04 box: the disk hangs off the SATA controller, not the first (IDE) one', () => {
    const ovf = parseOvf(real('ovf-s1.16-macosx-ubuntu1604-disk001-box.ovf'))
    expect(ovf).toMatchObject({name: 'ubuntu-16.04-amd64', osType: 'Ubuntu_64', cpus: 1, memoryMiB: 1024, firmware: 'bios'})
    expect(ovf.disks).toEqual([{
      diskId: 'vmdisk1', file: 'ubuntu-16.04-amd64-disk001.vmdk', capacityBytes: 68719476736, format: STREAM, controller: SATA_DISK, addressOnParent: 0,
    }])
  })

  it('refuses the VirtualBox 7 template with placeholders, naming the bad capacity', () => {
    const error = refusal(() => parseOvf(real('ovf-s1.19-windows-archlinux-TEMPLATE-placeholders-box.ovf')))
    expect(error.code).toBe('OVF_BAD_CAPACITY')
    expect(error.message).toContain('"DISK_CAPACITY"')
    expect(error.message).toContain('vmdisk1')
  })

  it('finds EFI in the VirtualBox 7 layout once the template placeholders are filled in', () => {
    const filled = real('ovf-s1.19-windows-archlinux-TEMPLATE-placeholders-box.ovf')
      .replace('DISK_CAPACITY', '21474836480').replace('VMDK_FILE_NAME', 'packer-arch64-disk001.vmdk')
    const ovf = parseOvf(filled)
    expect(ovf).toMatchObject({name: 'packer-arch64-1720168810', osType: 'ArchLinux_64', cpus: 1, memoryMiB: 1024, firmware: 'efi'})
    expect(ovf.disks.map((d) => [d.file, d.capacityBytes])).toEqual([['packer-arch64-disk001.vmdk', 21474836480]])
  })
})

describe('parseOvf linking disks', () => {
  const twoFiles = makeOvf([{name: 'box-disk001.vmdk', capacityBytes: 1048576}])
    .replace('<File ovf:id="file1"', '<File ovf:id="iso1" ovf:href="guest-additions.iso"/>\n    <File ovf:id="file1"')

  it('follows HostResource -> Disk -> fileRef -> File, never the first File', () => {
    expect(parseOvf(twoFiles).disks.map((d) => d.file)).toEqual(['box-disk001.vmdk'])
  })

  it('accepts the ovf:/disk/ form of HostResource and lists several disks in hardware order', () => {
    const xml = makeOvf([{name: 'a.vmdk'}, {name: 'b.vmdk', capacityBytes: 2097152}]).replace('/disk/vmdisk2', 'ovf:/disk/vmdisk2')
    expect(parseOvf(xml).disks.map((d) => [d.file, d.capacityBytes, d.addressOnParent])).toEqual([['a.vmdk', 1048576, 0], ['b.vmdk', 2097152, 1]])
  })

  it('honours capacityAllocationUnits', () => {
    const disk = (units: string) => parseOvf(makeOvf([{name: 'd.vmdk', capacityBytes: 8}], {capacityUnits: units})).disks[0].capacityBytes
    expect(disk('byte * 2^30')).toBe(8 * 2 ** 30)
    expect(disk('byte*2^20')).toBe(8 * 2 ** 20)
    expect(disk('byte * 1024')).toBe(8 * 1024)
    expect(disk('GigaBytes')).toBe(8 * 2 ** 30)
    expect(refusal(() => disk('furlongs')).code).toBe('OVF_BAD_UNITS')
  })

  it('honours the memory AllocationUnits', () => {
    const xml = makeOvf([{name: 'd.vmdk'}], {memoryMiB: 2}).replace('<rasd:AllocationUnits>MegaBytes', '<rasd:AllocationUnits>byte * 2^30')
    expect(parseOvf(xml).memoryMiB).toBe(2048)
  })

  it('refuses a disk id, file id or href that does not resolve inside the box', () => {
    const ovf = makeOvf([{name: 'd.vmdk'}])
    expect(refusal(() => parseOvf(ovf.replace('/disk/vmdisk1', '/disk/nope'))).message).toContain('"nope"')
    expect(refusal(() => parseOvf(ovf.replace('ovf:fileRef="file1"', 'ovf:fileRef="gone"'))).code).toBe('OVF_BROKEN')
    for (const href of ['../d.vmdk', '/etc/shadow', 'http://example.org/d.vmdk']) {
      const error = refusal(() => parseOvf(ovf.replace('ovf:href="d.vmdk"', `ovf:href="${href}"`)))
      expect(error.code).toBe('OVF_BAD_HREF')
      expect(error.message).toContain(href)
    }
  })

  it('reports the controller kind from the parent Item', () => {
    const withController = (type: number, subType: string) => parseOvf(makeOvf([{name: 'd.vmdk'}])
      .replace('<rasd:ResourceSubType>AHCI</rasd:ResourceSubType><rasd:ResourceType>20', `<rasd:ResourceSubType>${subType}</rasd:ResourceSubType><rasd:ResourceType>${type}`)).disks[0].controller?.kind
    expect(withController(5, 'PIIX4')).toBe('ide')
    expect(withController(6, 'lsilogic')).toBe('scsi')
    expect(withController(6, 'VirtioSCSI')).toBe('virtio-scsi')
    expect(withController(20, 'NVMe')).toBe('nvme')
  })

  it('decodes predefined entities in the VM name without expanding anything else', () => {
    expect(parseOvf(makeOvf([{name: 'd.vmdk'}], {name: 'web &amp; db'})).name).toBe('web & db')
  })
})

describe('parseOvf refusals', () => {
  const ovf = makeOvf([{name: 'd.vmdk'}])

  it('refuses a DOCTYPE before parsing', () => {
    const error = refusal(() => parseOvf(ovf.replace('<Envelope', '<!DOCTYPE Envelope>\n<Envelope')))
    expect(error.code).toBe('OVF_DOCTYPE')
    expect(error.message).toContain('<!DOCTYPE>')
  })

  it('refuses an ENTITY declaration (an external entity that would read a file)', () => {
    const xml = ovf.replace('<Envelope', '<!DOCTYPE Envelope [<!ENTITY pw SYSTEM "file:///etc/passwd">]>\n<Envelope').replace('test-vm"', '&pw;"')
    const error = refusal(() => parseOvf(xml))
    expect(error.code).toBe('OVF_DOCTYPE')
    expect(error.message).toContain('<!ENTITY>')
  })

  it('refuses malformed XML with its line', () => {
    const error = refusal(() => parseOvf(ovf.replace('</DiskSection>', '')))
    expect(error.code).toBe('OVF_MALFORMED')
    expect(error.message).toMatch(/line \d+/)
  })

  it('refuses a non-numeric CPU count and a document that is not an OVF', () => {
    expect(refusal(() => parseOvf(ovf.replace('<rasd:VirtualQuantity>2<', '<rasd:VirtualQuantity>two<'))).code).toBe('OVF_BAD_HARDWARE')
    expect(refusal(() => parseOvf('<html><body/></html>')).message).toContain('<Envelope>')
  })
})
