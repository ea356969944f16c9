import {mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {checkRoomBeforePackage} from '../../../src/push/room-check.js'
import type {PushPlan} from '../../../src/push/plan.js'
import {vagrantVmDisks} from '../../../src/push/vm-disks.js'

// The settings files as VirtualBox 7 and VMware Fusion 13 write them, and Vagrant's machine
// folder (.vagrant/machines/NAME/PROVIDER/id), in a temporary home; the disks are sparse files.
const GiB = 2 ** 30
const VM_UUID = '5d2f3c1a-8e1b-4c7e-9a55-0b6a1c2d3e4f'

let root: string
let project: string
let home: string

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'shien-vm-disks-'))
  project = join(root, 'project')
  home = join(root, 'home')
  mkdirSync(project)
  writeFileSync(join(project, 'Vagrantfile'), 'Vagrant.configure("2") do |config|\n  config.vm.box = "os101/debian12"\nend\n')
})
afterEach(() => rmSync(root, {recursive: true, force: true}))

function machine(provider: string, id: string, name = 'default') {
  const dir = join(project, '.vagrant', 'machines', name, provider)
  mkdirSync(dir, {recursive: true})
  writeFileSync(join(dir, 'id'), id)
}

function disk(path: string, bytes: number, head = '') {
  writeFileSync(path, head)
  truncateSync(path, bytes)
}

/** A VirtualBox VM registered in VirtualBox.xml, with a base disk and a snapshot's differencing disk. */
function virtualBoxVm(settingsDir: string) {
  const vmDir = join(home, 'VirtualBox VMs', 'project_default_1733480000000_12345')
  mkdirSync(join(vmDir, 'Snapshots'), {recursive: true})
  mkdirSync(settingsDir, {recursive: true})
  writeFileSync(
    join(settingsDir, 'VirtualBox.xml'),
    `<?xml version="1.0"?>
<VirtualBox xmlns="http://www.virtualbox.org/" version="1.19-macosx">
  <Global>
    <MachineRegistry>
      <MachineEntry uuid="{0b8f6a3e-1111-2222-3333-444455556666}" src="${join(home, 'VirtualBox VMs', 'other', 'other.vbox')}"/>
      <MachineEntry uuid="{${VM_UUID}}" src="${join(vmDir, 'project_default_1733480000000_12345.vbox')}"/>
    </MachineRegistry>
    <SystemProperties defaultMachineFolder="${join(home, 'VirtualBox VMs')}"/>
  </Global>
</VirtualBox>
`,
  )
  writeFileSync(
    join(vmDir, 'project_default_1733480000000_12345.vbox'),
    `<?xml version="1.0"?>
<VirtualBox xmlns="http://www.virtualbox.org/" version="1.19-macosx">
  <Machine uuid="{${VM_UUID}}" name="project_default_1733480000000_12345" OSType="Debian12_arm64" snapshotFolder="Snapshots">
    <MediaRegistry>
      <HardDisks>
        <HardDisk uuid="{7f0d9a7c-aaaa-bbbb-cccc-ddddeeeeffff}" location="debian-12-disk001.vmdk" format="VMDK" type="Normal">
          <HardDisk uuid="{9c1e2b3a-aaaa-bbbb-cccc-ddddeeeeffff}" location="Snapshots/{9c1e2b3a-aaaa-bbbb-cccc-ddddeeeeffff}.vmdk" format="VMDK"/>
        </HardDisk>
      </HardDisks>
    </MediaRegistry>
    <Hardware/>
  </Machine>
</VirtualBox>
`,
  )
  disk(join(vmDir, 'debian-12-disk001.vmdk'), 3 * GiB)
  disk(join(vmDir, 'Snapshots', '{9c1e2b3a-aaaa-bbbb-cccc-ddddeeeeffff}.vmdk'), GiB / 2)
  return vmDir
}

describe("the project's VM disks, read before vagrant package", () => {
  it('VirtualBox on a Mac: the VM from VirtualBox.xml, its disks from the .vbox, snapshots included', () => {
    machine('virtualbox', VM_UUID)
    virtualBoxVm(join(home, 'Library', 'VirtualBox'))
    const disks = vagrantVmDisks(project, {home, env: {}, platform: 'darwin'})
    expect(disks).toMatchObject({known: true, provider: 'virtualbox', machine: 'default', bytes: 3.5 * GiB})
    expect(disks.known && disks.files.map((f) => f.slice(home.length))).toEqual([
      '/VirtualBox VMs/project_default_1733480000000_12345/debian-12-disk001.vmdk',
      '/VirtualBox VMs/project_default_1733480000000_12345/Snapshots/{9c1e2b3a-aaaa-bbbb-cccc-ddddeeeeffff}.vmdk',
    ])
  })

  it('VirtualBox on Linux (~/.config) and under VBOX_USER_HOME', () => {
    machine('virtualbox', VM_UUID)
    virtualBoxVm(join(home, '.config', 'VirtualBox'))
    expect(vagrantVmDisks(project, {home, env: {}, platform: 'linux'})).toMatchObject({known: true, bytes: 3.5 * GiB})
    expect(vagrantVmDisks(project, {home, env: {}, platform: 'darwin'})).toMatchObject({known: false, reason: expect.stringMatching(/VirtualBox\.xml was not found/)})
    const elsewhere = join(root, 'vbox-home')
    virtualBoxVm(elsewhere)
    expect(vagrantVmDisks(project, {home, env: {VBOX_USER_HOME: elsewhere}, platform: 'darwin'})).toMatchObject({known: true, bytes: 3.5 * GiB})
  })

  it('VMware: the .vmx Vagrant recorded, split extents and the parent of a snapshot disk', () => {
    const vmDir = join(project, '.vagrant', 'machines', 'default', 'vmware_desktop', '0c4f6e52-vm')
    mkdirSync(vmDir, {recursive: true})
    const vmx = join(vmDir, 'debian-12.vmx')
    writeFileSync(
      vmx,
      `.encoding = "UTF-8"\nconfig.version = "8"\nvirtualHW.version = "20"\nguestOS = "arm-debian12-64"\nnvme0.present = "TRUE"\nnvme0:0.fileName = "disk-000001.vmdk"\nnvme0:0.present = "TRUE"\nsata0:1.deviceType = "cdrom-raw"\nsata0:1.fileName = "auto detect"\n`,
    )
    machine('vmware_desktop', vmx)
    disk(join(vmDir, 'disk-000001.vmdk'), 1024, '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=aaaabbbb\ncreateType="monolithicSparse"\nparentFileNameHint="disk.vmdk"\n')
    disk(join(vmDir, 'disk.vmdk'), 1024, '# Disk DescriptorFile\nversion=1\nCID=aaaabbbb\nparentCID=ffffffff\ncreateType="twoGbMaxExtentSparse"\nRW 4192256 SPARSE "disk-s001.vmdk"\nRW 4192256 SPARSE "disk-s002.vmdk"\n')
    disk(join(vmDir, 'disk-s001.vmdk'), 2 * GiB)
    disk(join(vmDir, 'disk-s002.vmdk'), GiB)
    disk(join(vmDir, 'unrelated-s001.vmdk'), 5 * GiB)
    const disks = vagrantVmDisks(project, {home, env: {}})
    expect(disks).toMatchObject({known: true, provider: 'vmware_desktop', bytes: 3 * GiB + 2048})
    expect(disks.known && disks.files.map((f) => f.slice(vmDir.length + 1))).toEqual(['disk-000001.vmdk', 'disk.vmdk', 'disk-s001.vmdk', 'disk-s002.vmdk'])
  })

  it('says why when the disks cannot be known, and never throws', () => {
    expect(vagrantVmDisks(project, {home, env: {}})).toEqual({known: false, reason: 'Vagrant has created no VM in this project yet'})
    machine('libvirt', 'a1b2c3')
    expect(vagrantVmDisks(project, {home, env: {}})).toEqual({known: false, reason: 'shien does not read the disks of a libvirt VM before it is packaged'})
    machine('virtualbox', VM_UUID, 'db')
    expect(vagrantVmDisks(project, {home, env: {}})).toMatchObject({known: false, reason: 'the project has 2 VMs (db, default)'})
    rmSync(join(project, '.vagrant'), {recursive: true})
    machine('virtualbox', VM_UUID)
    mkdirSync(join(home, '.config', 'VirtualBox'), {recursive: true})
    writeFileSync(join(home, '.config', 'VirtualBox', 'VirtualBox.xml'), '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><VirtualBox>&e;</VirtualBox>')
    expect(vagrantVmDisks(project, {home, env: {}, platform: 'linux'})).toMatchObject({known: false, reason: expect.stringMatching(/^the virtualbox VM's files could not be read/)})
  })
})

describe('the room check before vagrant package', () => {
  const plan = (over: Partial<PushPlan> = {}) =>
    ({projectDir: project, name: 'web', keepDir: join(project, '.vagrant', 'shien'), repackage: false, base: {kind: 'none', reason: 'none'}, target: {alias: 'blade'}, ...over}) as PushPlan

  beforeEach(() => {
    machine('virtualbox', VM_UUID)
    virtualBoxVm(join(home, '.config', 'VirtualBox'))
  })
  const env = () => ({HOME: home, XDG_CONFIG_HOME: join(home, '.config')})

  it('refuses a VM whose disks the blade has no room for, naming both, with the reserve counted', () => {
    const error = (() => {
      try {
        checkRoomBeforePackage(plan(), {freeBytes: 4 * GiB, reserveBytes: GiB}, env())
      } catch (e) {
        return e
      }
    })()
    expect(error).toMatchObject({
      code: 'BLADE_DISK_FULL',
      exitCode: 5,
      message: expect.stringMatching(/^Not enough space on blade for this VM: its disks hold 3\.5 GiB \(virtualbox, 2 files\), and the blade has 4 GiB free for you, and 1 GiB must stay free for everyone's VMs\. Nothing was packaged/),
    })
    expect(checkRoomBeforePackage(plan(), {freeBytes: 5 * GiB, reserveBytes: GiB}, env())).toMatchObject({known: true, bytes: 3.5 * GiB})
  })

  it('leaves a named box, a kept box and a delta push to the blade, which measures them when the upload is prepared', () => {
    const full = {freeBytes: GiB, reserveBytes: 0}
    expect(checkRoomBeforePackage(plan({boxPath: '/x.box'}), full, env())).toBeUndefined()
    expect(checkRoomBeforePackage(plan({base: {kind: 'base', box: 'os101/debian12', version: '1.0.0', from: 'box_meta'}}), full, env())).toBeUndefined()
    mkdirSync(join(project, '.vagrant', 'shien'), {recursive: true})
    writeFileSync(join(project, '.vagrant', 'shien', 'web.box'), 'kept')
    expect(checkRoomBeforePackage(plan(), full, env())).toBeUndefined()
    // --repackage packages again, so the check applies again.
    expect(() => checkRoomBeforePackage(plan({repackage: true}), full, env())).toThrow(/Not enough space/)
    // A blade that does not report its room (an older one) is checked once the box is packaged.
    expect(checkRoomBeforePackage(plan({repackage: true}), undefined, env())).toMatchObject({known: true})
  })
})
