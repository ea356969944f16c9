// Builds small real boxes of every provider shien takes, as `vagrant package` lays them out,
// from one raw disk converted by qemu-img: VMware (.vmx with a monolithicSparse or split
// VMDK), Parallels (.pvm bundle with DiskDescriptor.xml and an expanding .hds) and libvirt
// (box.img qcow2).
import {execFile} from 'node:child_process'
import {readdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {makeBox, type TarEntry} from './make-box.js'

const run = promisify(execFile)

/** A raw disk with a recognisable pattern every 4 KiB; `farBlock` adds 64 KiB of 0x5a at that offset (past 2 GiB makes a split VMDK of two extents), the rest a hole. */
export async function patternRaw(dir: string, name: string, bytes = 3 * 1024 * 1024, farBlock?: number): Promise<string> {
  const data = Buffer.alloc(bytes)
  for (let i = 0; i < data.length; i += 4096) data.write(`shien ${name} block ${i}`, i)
  const path = join(dir, name)
  await writeFile(path, data)
  if (farBlock !== undefined) {
    await run('truncate', ['-s', String(farBlock + 1024 * 1024), path])
    await run('qemu-io', ['-f', 'raw', '-c', `write -P 0x5a ${farBlock} 65536`, path])
  }
  return path
}

/** `qemu-img convert -f raw -O FORMAT [-o subformat=...]` into `dir/name`; returns every file it wrote there. */
export async function convertRaw(raw: string, dir: string, name: string, format: 'vmdk' | 'parallels' | 'qcow2', subformat?: string): Promise<Map<string, Buffer>> {
  const before = new Set(await readdir(dir))
  await run('qemu-img', ['convert', '-f', 'raw', '-O', format, ...(subformat ? ['-o', `subformat=${subformat}`] : []), raw, join(dir, name)])
  const files = new Map<string, Buffer>()
  for (const file of await readdir(dir)) if (!before.has(file)) files.set(file, await readFile(join(dir, file)))
  return files
}

/** A VMX as VMware Fusion writes it, with one disk. */
export function vmx(opts: {guestOS: string; disk: string; firmware?: 'efi' | 'bios'; device?: string; extra?: string[]}): string {
  const device = opts.device ?? 'nvme0:0'
  return [
    '.encoding = "UTF-8"', 'config.version = "8"', 'virtualHW.version = "20"', 'displayName = "debian12"',
    `guestOS = "${opts.guestOS}"`, ...(opts.firmware === 'bios' ? [] : ['firmware = "efi"']), 'numvcpus = "2"', 'memsize = "2048"',
    `${device.split(':')[0]}.present = "TRUE"`, `${device}.present = "TRUE"`, `${device}.fileName = "${opts.disk}"`,
    'sata0:1.present = "TRUE"', 'sata0:1.deviceType = "cdrom-image"', 'sata0:1.fileName = "/Users/student/Downloads/debian-12-arm64-netinst.iso"',
    ...(opts.extra ?? []), '',
  ].join('\n')
}

/** A Parallels DiskDescriptor.xml naming one image. */
export function diskDescriptor(image: string, sectors: number, opts: {extraImage?: string; parent?: string} = {}): string {
  const imageXml = (file: string) => `<Image><GUID>{5fbaabe3-6958-40ff-92a7-860e329aab41}</GUID><Type>Compressed</Type><File>${file}</File></Image>`
  return `<?xml version='1.0' encoding='UTF-8'?>
<Parallels_disk_image Version="1.0">
    <Disk_Parameters>
        <Disk_size>${sectors}</Disk_size>
        <Cylinders>${Math.ceil(sectors / 1008)}</Cylinders>
        <PhysicalSectorSize>512</PhysicalSectorSize>
        <Heads>16</Heads>
        <Sectors>63</Sectors>
        <Padding>0</Padding>
        <UID>{b1e2f3a4-0000-4000-8000-000000000001}</UID>
        <Name>harddisk</Name>
    </Disk_Parameters>
    <StorageData>
        <Storage>
            <Start>0</Start>
            <End>${sectors}</End>
            <Blocksize>2048</Blocksize>
            ${imageXml(image)}${opts.extraImage ? imageXml(opts.extraImage) : ''}
        </Storage>
    </StorageData>
    <Snapshots>
        <Shot>
            <GUID>{5fbaabe3-6958-40ff-92a7-860e329aab41}</GUID>
            <ParentGUID>${opts.parent ?? '{00000000-0000-0000-0000-000000000000}'}</ParentGUID>
        </Shot>
    </Snapshots>
</Parallels_disk_image>
`
}

/** A Parallels config.pvs reduced to what shien reads (name, EFI). */
export function configPvs(efi: boolean): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<ParallelsVirtualMachine dyn_lists="VirtualAppliance 0" schemaVersion="1.0">
   <Identification><VmUuid>{0e3c1c5e-1111-4a2b-9c3d-4e5f60718293}</VmUuid><VmName>debian12</VmName></Identification>
   <Settings><Startup><Bios><EfiEnabled>${efi ? 1 : 0}</EfiEnabled></Bios></Startup></Settings>
   <Hardware><Hdd id="0"><SystemName>/Users/student/Parallels/debian12.pvm/harddisk.hdd</SystemName></Hdd></Hardware>
</ParallelsVirtualMachine>
`
}

/** Writes a box of these entries (plus metadata.json and a Vagrantfile) and returns its path. */
export function providerBox(dir: string, fileName: string, metadata: Record<string, unknown> | false, entries: TarEntry[]): Promise<string> {
  return makeBox(dir, fileName, {disks: [], ovf: false, metadata, extra: entries})
}

/** The files of a map as tar entries, optionally under a folder. */
export function asEntries(files: Map<string, Buffer>, folder = ''): TarEntry[] {
  return [...files].map(([name, body]) => ({name: `${folder}${name}`, body}))
}

/**
 * The test box's disk as each other provider's `vagrant package` lays it out, made with
 * qemu-img from the box's own VMDK, tarred with the system's tar (the disks are hundreds of
 * MiB): a vmware_desktop box with a split VMDK (twoGbMaxExtentSparse), a parallels box (.pvm
 * bundle with an expanding image) and a libvirt box (box.img qcow2). All amd64; the VMware and
 * Parallels ones declare `firmware` (the test box's own: BIOS, or EFI for the debian-12-efi box),
 * a libvirt box declares none. Those left out of `only` are not made (their path is '').
 */
export async function providerBoxesFrom(
  testBox: string,
  dir: string,
  only: ReadonlyArray<'vmware' | 'parallels' | 'libvirt'> = ['vmware', 'parallels', 'libvirt'],
  firmware: 'bios' | 'efi' = 'bios',
): Promise<{vmware: string; parallels: string; libvirt: string}> {
  const disk = join(dir, 'source')
  await run('mkdir', ['-p', disk])
  await run('tar', ['-xf', testBox, '-C', disk, 'box-disk001.vmdk'])
  const vmdk = join(disk, 'box-disk001.vmdk')
  const {stdout} = await run('qemu-img', ['info', '--output=json', '-f', 'vmdk', vmdk])
  const virtualSize = (JSON.parse(stdout) as {'virtual-size': number})['virtual-size']
  const layout = async (name: 'vmware' | 'parallels' | 'libvirt', metadata: Record<string, unknown>, write: (folder: string) => Promise<void>) => {
    if (!only.includes(name)) return ''
    const folder = join(dir, name)
    await run('mkdir', ['-p', folder])
    await writeFile(join(folder, 'metadata.json'), JSON.stringify(metadata))
    await write(folder)
    const box = join(dir, `${name}.box`)
    await run('tar', ['-cf', box, '-C', folder, '.'])
    await run('rm', ['-rf', folder])
    return box
  }
  const vmware = await layout('vmware', {provider: 'vmware_desktop', architecture: 'amd64'}, async (folder) => {
    await run('qemu-img', ['convert', '-f', 'vmdk', '-O', 'vmdk', '-o', 'subformat=twoGbMaxExtentSparse', vmdk, join(folder, 'disk.vmdk')])
    await writeFile(join(folder, 'debian12.vmx'), vmx({guestOS: 'debian12-64', disk: 'disk.vmdk', firmware, device: 'scsi0:0'}))
  })
  const parallels = await layout('parallels', {provider: 'parallels', architecture: 'amd64'}, async (folder) => {
    const hdd = join(folder, 'box.pvm', 'harddisk.hdd')
    await run('mkdir', ['-p', hdd])
    const image = 'harddisk.hdd.0.{5fbaabe3-6958-40ff-92a7-860e329aab41}.hds'
    await run('qemu-img', ['convert', '-f', 'vmdk', '-O', 'parallels', vmdk, join(hdd, image)])
    await writeFile(join(hdd, 'DiskDescriptor.xml'), diskDescriptor(image, virtualSize / 512))
    await writeFile(join(folder, 'box.pvm', 'config.pvs'), configPvs(firmware === 'efi'))
  })
  const libvirt = await layout('libvirt', {provider: 'libvirt', format: 'qcow2', virtual_size: Math.ceil(virtualSize / 2 ** 30), architecture: 'amd64'}, async (folder) => {
    await run('qemu-img', ['convert', '-f', 'vmdk', '-O', 'qcow2', vmdk, join(folder, 'box.img')])
  })
  await run('rm', ['-rf', disk])
  return {vmware, parallels, libvirt}
}
