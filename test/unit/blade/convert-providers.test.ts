import {execFile} from 'node:child_process'
import {existsSync} from 'node:fs'
import {copyFile, mkdir, readdir, readFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import type {BladeContext} from '../../../src/blade/caller.js'
import {convertBox} from '../../../src/blade/convert.js'
import {readStagedRecord, stagedImage} from '../../../src/blade/slot-files.js'
import {DEFAULT_BLADE_CONFIG} from '../../../src/config/blade-config.js'
import {userPaths} from '../../../src/config/storage-layout.js'
import {ShienError} from '../../../src/errors.js'
import {makeBox, tempDir} from '../../support/make-box.js'
import {asEntries, configPvs, convertRaw, diskDescriptor, patternRaw, providerBox, vmx} from '../../support/provider-boxes.js'

// The blade's convert step, run here as the current user over a storage root of its own:
// each provider's box is unpacked, gated again and converted by the real qemu-img, and the
// qcow2 it writes must hold exactly the disk the box was made from.
const run = promisify(execFile)
const fixtures = join(import.meta.dirname, '../../fixtures')
const IMAGE = 'harddisk.hdd.0.{5fbaabe3-6958-40ff-92a7-860e329aab41}.hds'

let dir: string
let cleanup: () => Promise<void>
let ctx: BladeContext
let raw: string
let big: string
beforeAll(async () => {
  ;({dir, cleanup} = await tempDir())
  const root = join(dir, 'storage')
  // The default cache mode is O_DIRECT, which a tmpfs refuses; the blade's storage is a disk.
  ctx = {account: 'e195701', config: {...DEFAULT_BLADE_CONFIG, storageRoot: root, push: {convertCache: 'writeback'}}, paths: userPaths(root, 'e195701')}
  await mkdir(ctx.paths.incoming, {recursive: true})
  raw = await patternRaw(dir, 'disk.raw')
  big = await patternRaw(dir, 'big.raw', 3 * 1024 * 1024, 2200 * 1024 * 1024)
}, 60_000)
afterAll(() => cleanup())

let n = 0
async function formatDir(): Promise<string> {
  const path = join(dir, `f${n++}`)
  await mkdir(path)
  return path
}

/** Puts the box where an upload leaves it and runs the blade's convert on it. */
async function convert(boxPath: string, name: string) {
  await copyFile(boxPath, join(ctx.paths.incoming, `${name}.box`))
  return convertBox(ctx, name, '01')
}

async function expectSameDisk(image: string, source: string): Promise<void> {
  const {stdout} = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', source, image])
  expect(stdout).toContain('Images are identical')
  const info = JSON.parse((await run('qemu-img', ['info', '--output=json', '-f', 'qcow2', image])).stdout) as Record<string, unknown>
  expect(info['backing-filename']).toBeUndefined()
  expect((info['format-specific'] as {data: Record<string, unknown>}).data['data-file']).toBeUndefined()
}

describe('convertBox turns every provider\'s box into a qcow2 holding the same disk', () => {
  it('VMware, split VMDK with two extents (qemu-img -f vmdk on the descriptor)', async () => {
    const files = await convertRaw(big, await formatDir(), 'disk.vmdk', 'vmdk', 'twoGbMaxExtentSparse')
    expect([...files.keys()].sort()).toEqual(['disk-s001.vmdk', 'disk-s002.vmdk', 'disk.vmdk'])
    const box = await providerBox(dir, 'split.box', {provider: 'vmware_desktop', architecture: 'arm64'}, [{name: 'debian12.vmx', body: vmx({guestOS: 'arm-debian12-64', disk: 'disk.vmdk'})}, ...asEntries(files)])
    const result = await convert(box, 'split')
    expect(result).toMatchObject({disk: 'disk.vmdk', virtualSize: 2201 * 1024 * 1024, ignoredDisks: []})
    await expectSameDisk(result.image, big)
    // What the box declares goes to harden, which checks it against the disk, in the staged record.
    expect(await readStagedRecord(ctx, '01')).toEqual({
      slot: '01', declaredArchitecture: {architecture: 'arm64', source: 'metadata.json ("architecture": "arm64")'}, firmware: 'efi',
    })
  })

  it('VMware, monolithicSparse VMDK', async () => {
    const files = await convertRaw(raw, await formatDir(), 'disk.vmdk', 'vmdk', 'monolithicSparse')
    const box = await providerBox(dir, 'mono.box', {provider: 'vmware_desktop'}, [{name: 'debian12.vmx', body: vmx({guestOS: 'debian12-64', disk: 'disk.vmdk'})}, ...asEntries(files)])
    await expectSameDisk((await convert(box, 'mono')).image, raw)
    expect((await readStagedRecord(ctx, '01')).declaredArchitecture).toMatchObject({architecture: 'amd64'})
  })

  it('Parallels (qemu-img -f parallels on the image the descriptor names)', async () => {
    const files = await convertRaw(raw, await formatDir(), IMAGE, 'parallels')
    const box = await providerBox(dir, 'prl.box', {provider: 'parallels', architecture: 'arm64'}, [
      {name: 'box.pvm/config.pvs', body: configPvs(true)}, {name: 'box.pvm/harddisk.hdd/DiskDescriptor.xml', body: diskDescriptor(IMAGE, 6144)},
      ...asEntries(files, 'box.pvm/harddisk.hdd/'),
    ])
    const result = await convert(box, 'prl')
    expect(result.disk).toBe(IMAGE)
    await expectSameDisk(result.image, raw)
  })

  it('libvirt, qcow2 box.img (qemu-img -f qcow2)', async () => {
    const files = await convertRaw(raw, await formatDir(), 'box.img', 'qcow2')
    const box = await providerBox(dir, 'lv.box', {provider: 'libvirt', format: 'qcow2', virtual_size: 1}, asEntries(files))
    await expectSameDisk((await convert(box, 'lv')).image, raw)
  })

  it('VirtualBox 7.1 arm64, streamOptimized VMDK', async () => {
    const files = await convertRaw(raw, await formatDir(), 'box-disk001.vmdk', 'vmdk', 'streamOptimized')
    const ovf = (await readFile(join(fixtures, 'vbox71/box-arm64.ovf'), 'utf8')).replace('ovf:capacity="1048576"', 'ovf:capacity="3145728"')
    const box = await makeBox(dir, 'vbox.box', {ovf, disks: [{name: 'box-disk001.vmdk', bytes: files.get('box-disk001.vmdk')!}], metadata: {provider: 'virtualbox', architecture: 'arm64'}})
    await expectSameDisk((await convert(box, 'vbox')).image, raw)
  })
})

describe('convertBox refuses on the blade what the laptop refuses', () => {
  it.each([
    ['a VMX naming /etc/shadow', 'VMX_BAD_DISK'],
    ['a split descriptor naming ../x', 'VMDK_BAD_EXTENT'],
    ['a qcow2 box.img with a backing file', 'QCOW2_BACKING_FILE'],
    ['a VirtualBox VMDK that is a text descriptor of /etc/shadow', 'VMDK_TEXT_DESCRIPTOR'],
    ['a Parallels descriptor naming an image outside its bundle', 'PARALLELS_BAD_IMAGE_PATH'],
  ])('%s: %s, and no image is left', async (what, code) => {
    const work = await formatDir()
    let box: string
    if (what.startsWith('a VMX')) {
      const files = await convertRaw(raw, work, 'disk.vmdk', 'vmdk', 'monolithicSparse')
      box = await providerBox(dir, `r${n}.box`, {provider: 'vmware_desktop'}, [{name: 'x.vmx', body: vmx({guestOS: 'debian12-64', disk: '/etc/shadow'})}, ...asEntries(files)])
    } else if (what.startsWith('a split')) {
      const descriptor = '# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType="twoGbMaxExtentSparse"\nRW 6144 SPARSE "../x"\n'
      box = await providerBox(dir, `r${n}.box`, {provider: 'vmware_desktop'}, [{name: 'x.vmx', body: vmx({guestOS: 'debian12-64', disk: 'disk.vmdk'})}, {name: 'disk.vmdk', body: descriptor}])
    } else if (what.startsWith('a VirtualBox')) {
      box = await makeBox(dir, `r${n}.box`, {textDescriptor: '/etc/shadow'})
    } else if (what.startsWith('a Parallels')) {
      const files = await convertRaw(raw, work, IMAGE, 'parallels')
      box = await providerBox(dir, `r${n}.box`, {provider: 'parallels'}, [
        {name: 'box.pvm/config.pvs', body: configPvs(false)}, {name: 'box.pvm/harddisk.hdd/DiskDescriptor.xml', body: diskDescriptor(`../../../${IMAGE}`, 6144)},
        ...asEntries(files, 'box.pvm/harddisk.hdd/'),
      ])
    } else {
      await run('qemu-img', ['create', '-f', 'qcow2', '-b', raw, '-F', 'raw', join(work, 'box.img')])
      box = await providerBox(dir, `r${n}.box`, {provider: 'libvirt'}, [{name: 'box.img', body: await readFile(join(work, 'box.img'))}])
    }
    const error = await convert(box, `r${n}`).then(() => undefined, (e: unknown) => e)
    expect(error).toBeInstanceOf(ShienError)
    expect((error as ShienError).code).toBe(code)
    expect(existsSync(stagedImage(ctx, '01'))).toBe(false)
    expect((await readdir(ctx.paths.incoming)).filter((f) => f.includes('.work-'))).toEqual([])
  })
})
