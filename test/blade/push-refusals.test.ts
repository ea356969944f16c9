import {copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest'

import {BLADE_PROTOCOL} from '../../src/protocol/blade-steps.js'

import {runShien} from '../support/cli.js'
import {ensureLocalBlade, type LocalBlade} from '../support/local-blade.js'
import {definedDomains} from '../support/virsh.js'
import {makeBox, type MakeBoxOptions, tempDir} from '../support/make-box.js'

let blade: LocalBlade
let dir: string
let cleanup: () => Promise<void>

const userDir = (account = blade.account) => join(blade.storageRoot, 'users', account)
const listing = (account?: string) => ({
  incoming: readdirSync(join(userDir(account), 'incoming')).sort(),
  images: readdirSync(join(userDir(account), 'images')).sort(),
})

/** Pushes a box and checks the blade was left exactly as it was. */
async function refusedPush(args: string[], expectCode: number, expectText: RegExp, home = blade.laptopHome) {
  const before = listing()
  const ours = () => definedDomains([blade.account, blade.otherAccount])
  const domains = await ours()
  const run = await runShien(['push', ...args, '--host', 'blade', '--slot', '02', '--json'], {home})
  expect(run.exitCode, run.stdout + run.stderr).toBe(expectCode)
  expect(run.json?.error?.message ?? '').toMatch(expectText)
  expect(run.json.error.suggestions.length + run.json.error.message.length).toBeGreaterThan(0)
  expect(listing()).toEqual(before)
  expect(await ours()).toEqual(domains)
  return run
}

beforeAll(async () => {
  blade = await ensureLocalBlade()
  ;({dir, cleanup} = await tempDir())
}, 900_000)

afterAll(async () => cleanup?.())

describe('bad boxes are refused on the laptop and change nothing on the blade', () => {
  const cases: Array<[string, MakeBoxOptions, RegExp]> = [
    ['a ../ entry', {unsafe: 'dotdot'}, /\.\./],
    ['an absolute path', {unsafe: 'absolute'}, /absolute/i],
    ['a symlink', {unsafe: 'symlink'}, /symbolic link/],
    ['a hard link', {unsafe: 'hardlink'}, /hard link/],
    ['a text descriptor VMDK with a FLAT extent', {textDescriptor: '/etc/shadow'}, /descriptor/i],
    ['no disk', {disks: [], ovf: undefined}, /disk/i],
    ['an OVF with a DOCTYPE', {ovf: '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><Envelope>&e;</Envelope>'}, /DOCTYPE|entit/i],
  ]
  it.each(cases)('%s', async (_label, options, message) => {
    const box = await makeBox(dir, `case-${Math.random().toString(36).slice(2)}.box`, options)
    await refusedPush([box], 3, message)
  })

  it('a truncated gzip box', async () => {
    const box = await makeBox(dir, 'whole.box', {gzip: true})
    const cut = join(dir, 'cut.box')
    writeFileSync(cut, readFileSync(box).subarray(0, Math.floor(readFileSync(box).length / 2)))
    await refusedPush([cut], 3, /incomplete|truncated/i)
  })
})

describe('requests the blade must refuse, before any upload', () => {
  it('a slot outside 01-04', async () => {
    const box = await makeBox(dir, 'slot.box', {})
    const before = listing()
    const run = await runShien(['push', box, '--host', 'blade', '--slot', '05', '--json'], {home: blade.laptopHome})
    expect(run.exitCode).toBe(3)
    expect(run.json.error.message).toMatch(/Slot 05 is outside your slots 01 to 04/)
    expect(listing()).toEqual(before)
  })

  it('a wrong slot before vagrant package, which would shut the VM down, runs', async () => {
    const project = mkdtempSync(join(tmpdir(), 'fast-checks-'))
    writeFileSync(join(project, 'Vagrantfile'), 'Vagrant.configure("2") do |config|\n  config.vm.box = "os101/debian12"\nend\n')
    // A vagrant that only notes it was run: it must not be.
    const bin = mkdtempSync(join(tmpdir(), 'fast-checks-bin-'))
    writeFileSync(join(bin, 'vagrant'), `#!/bin/sh\necho "$@" >> ${bin}/ran\n`, {mode: 0o755})
    const run = await runShien(['push', '--host', 'blade', '--slot', '05', '--json'], {home: blade.laptopHome, cwd: project, env: {PATH: `${bin}:${process.env.PATH}`}})
    expect(run.exitCode).toBe(3)
    expect(run.json.error.message).toMatch(/Slot 05 is outside your slots 01 to 04/)
    expect(readdirSync(bin)).toEqual(['vagrant'])
  })

  it('a VM whose disks the blade has no room for, before vagrant package runs', async () => {
    const project = mkdtempSync(join(tmpdir(), 'fast-room-'))
    writeFileSync(join(project, 'Vagrantfile'), 'Vagrant.configure("2") do |config|\n  config.vm.box = "os101/debian12"\nend\n')
    // The VirtualBox VM Vagrant made for the project: registered in VirtualBox.xml, with an 8 TiB (sparse) disk.
    const uuid = '5d2f3c1a-8e1b-4c7e-9a55-0b6a1c2d3e4f'
    mkdirSync(join(project, '.vagrant', 'machines', 'default', 'virtualbox'), {recursive: true})
    writeFileSync(join(project, '.vagrant', 'machines', 'default', 'virtualbox', 'id'), uuid)
    const vbox = join(project, 'vbox')
    mkdirSync(join(vbox, 'vm'), {recursive: true})
    writeFileSync(join(vbox, 'VirtualBox.xml'), `<VirtualBox xmlns="http://www.virtualbox.org/" version="1.19-linux"><Global><MachineRegistry><MachineEntry uuid="{${uuid}}" src="vm/vm.vbox"/></MachineRegistry></Global></VirtualBox>`)
    writeFileSync(join(vbox, 'vm', 'vm.vbox'), `<VirtualBox xmlns="http://www.virtualbox.org/" version="1.19-linux"><Machine uuid="{${uuid}}" name="vm"><MediaRegistry><HardDisks><HardDisk uuid="{7f0d9a7c-aaaa-bbbb-cccc-ddddeeeeffff}" location="disk.vdi" format="VDI" type="Normal"/></HardDisks></MediaRegistry></Machine></VirtualBox>`)
    writeFileSync(join(vbox, 'vm', 'disk.vdi'), '')
    truncateSync(join(vbox, 'vm', 'disk.vdi'), 8 * 2 ** 40)
    const bin = mkdtempSync(join(tmpdir(), 'fast-room-bin-'))
    writeFileSync(join(bin, 'vagrant'), `#!/bin/sh\necho "$@" >> ${bin}/ran\n`, {mode: 0o755})
    const before = listing()
    const run = await runShien(['push', '--host', 'blade', '--slot', '02', '--full', '--json'], {home: blade.laptopHome, cwd: project, env: {PATH: `${bin}:${process.env.PATH}`, VBOX_USER_HOME: vbox}})
    expect(run.exitCode, run.stdout + run.stderr).toBe(5)
    expect(run.json.error).toMatchObject({code: 'BLADE_DISK_FULL', message: expect.stringMatching(/^Not enough space on blade for this VM: its disks hold 8 TiB \(virtualbox, 1 file\), and the blade has .* free for you.*Nothing was packaged; the VM was not shut down\.$/)})
    expect(readdirSync(bin)).toEqual(['vagrant'])
    expect(listing()).toEqual(before)
  })

  it('an unreachable host', async () => {
    const box = await makeBox(dir, 'unreachable.box', {})
    const run = await runShien(['push', box, '--host', 'e195701@127.0.0.1:1', '--json'], {home: blade.laptopHome})
    expect(run.exitCode).toBe(4)
    expect(run.json.error.message).toMatch(/Cannot connect to e195701@127.0.0.1:1/)
  })

  it('a changed host key names the known_hosts line, an unknown one needs consent', async () => {
    const box = await makeBox(dir, 'hostkey.box', {})
    const home = mkdtempSync(join(tmpdir(), 'laptop-'))
    await execa('cp', ['-a', join(blade.laptopHome, '.ssh'), home])
    // The local blade's laptop config says StrictHostKeyChecking yes, which refuses any unknown
    // key; this test is about what happens without it.
    const config = readFileSync(join(home, '.ssh', 'config'), 'utf8').replaceAll(blade.laptopHome, home).replace(/^\s*StrictHostKeyChecking yes\n/m, '')
    writeFileSync(join(home, '.ssh', 'config'), config)
    const knownHosts = join(home, '.ssh', 'known_hosts')
    writeFileSync(knownHosts, '# blades\n[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN1YdxBpNlzxDqfJyw/QKow1F+wvG9hXGoqiysfJOn5Y\n')
    const changed = await runShien(['push', box, '--host', 'blade', '--json'], {home})
    expect(changed.exitCode).toBe(4)
    expect(changed.json.error.code).toBe('HOST_KEY_CHANGED')
    expect(changed.json.error.message).toContain(`${knownHosts} line 2`)

    writeFileSync(knownHosts, '')
    const unknown = await runShien(['push', box, '--host', 'blade', '--json'], {home})
    expect(unknown.exitCode).toBe(4)
    expect(unknown.json.error.code).toBe('HOST_KEY_UNKNOWN')
    expect(readFileSync(knownHosts, 'utf8')).toBe('')

    const dry = await runShien(['push', box, '--host', 'blade', '--slot', '05', '--accept-new-host-key', '--json'], {home})
    expect(dry.json.error.code).toBe('BAD_SLOT')
    expect(readFileSync(knownHosts, 'utf8')).toContain('[127.0.0.1]:2222 ssh-ed25519 ')
  })

  it('a blade that speaks another protocol', async () => {
    const r = await execa('ssh', ['-F', join(blade.laptopHome, '.ssh', 'config'), 'blade', 'shien', 'blade', 'hello', '--json', '--protocol', '999'], {reject: false})
    expect(JSON.parse(String(r.stdout)).error.code).toBe('VERSION_MISMATCH')
    expect(r.exitCode).toBe(5)
  })
})

describe('the blade re-checks what the laptop checked', () => {
  it('refuses a text-descriptor VMDK that reached incoming/ without the laptop', async () => {
    const box = await makeBox(dir, 'sneaky.box', {textDescriptor: '/etc/shadow'})
    const target = join(userDir(), 'incoming', 'sneaky.box')
    copyFileSync(box, target)
    await execa('chown', [`${blade.account}:`, target])
    const r = await execa('ssh', ['-F', join(blade.laptopHome, '.ssh', 'config'), 'blade', 'shien', 'blade', 'convert', '--json', '--protocol', String(BLADE_PROTOCOL), '--name', 'sneaky', '--slot', '02'], {reject: false})
    expect(JSON.parse(String(r.stdout)).error.code).toBe('VMDK_TEXT_DESCRIPTOR')
    expect(readdirSync(join(userDir(), 'images')).filter((f) => f.includes('02'))).toEqual([])
    expect(readdirSync(join(userDir(), 'incoming')).filter((f) => f.includes('.work'))).toEqual([])
    await execa('rm', ['-f', target])
  })
})

describe('a full disk on the blade', () => {
  let mounted = ''
  afterEach(async () => {
    if (mounted) await execa('umount', [mounted], {reject: false})
    mounted = ''
  })

  /** The second student's incoming/ as a tmpfs of `size`, empty. */
  async function smallIncoming(size: string): Promise<string> {
    const account = blade.otherAccount
    mounted = join(userDir(account), 'incoming')
    const {stdout: uid} = await execa('id', ['-u', account])
    await execa('mount', ['-t', 'tmpfs', '-o', `size=${size},uid=${uid},mode=0700`, 'tmpfs', mounted])
    return mounted
  }

  it('is refused before the upload, with the space needed and free', async () => {
    const incoming = await smallIncoming('4m')
    const box = await makeBox(dir, 'big.box', {extra: [{name: 'padding.bin', body: Buffer.alloc(8 * 1024 * 1024, 1)}]})
    const run = await runShien(['push', box, '--host', 'blade', '--json'], {home: blade.otherLaptopHome})
    expect(run.exitCode, run.stdout + run.stderr).toBe(5)
    expect(run.json.error.code).toBe('BLADE_DISK_FULL')
    expect(run.json.error.message).toMatch(/8\.\d MiB needed, 4 MiB free/)
    expect(readdirSync(incoming)).toEqual([])
  })

  it('refuses an upload that fits but would leave less than the reserve free', async () => {
    // 10 MiB of storage: the default reserve is 5% of it, 512 KiB; the box leaves about 300 KiB.
    const incoming = await smallIncoming('10m')
    const box = await makeBox(dir, 'tight.box', {extra: [{name: 'padding.bin', body: Buffer.alloc(9.6 * 1024 * 1024, 1)}]})
    expect(statSync(box).size).toBeLessThan(10 * 1024 * 1024)
    const run = await runShien(['push', box, '--host', 'blade', '--json'], {home: blade.otherLaptopHome})
    expect(run.exitCode, run.stdout + run.stderr).toBe(5)
    expect(run.json.error.code).toBe('BLADE_DISK_FULL')
    expect(run.json.error.message).toMatch(/9\.\d MiB needed, 10 MiB free .*, and 512 KiB must stay free/)
    expect(readdirSync(incoming)).toEqual([])
  })
})
