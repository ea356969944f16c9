import {appendFileSync, mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {afterAll, beforeAll, beforeEach, describe, expect, it} from 'vitest'

import {BLADE_PROTOCOL} from '../../src/protocol/blade-steps.js'
import {runShien} from '../support/cli.js'
import {labLaptopHome, startVmLab, type VmLab} from '../support/vm-lab.js'

// Where `shien push` goes in a cluster, over real SSH: two lab blades of this test's own
// (test/support/vm-lab.ts: real sshds answering hello, `ie-virsh facts` and `ie-virsh list` from
// files, never the local blade). The built CLI asks blade-a, learns the cluster from its hello,
// asks both blades at once and takes the slot's lock on the blade placement chose. The lab
// blades do not run `shien blade lock`, so each push stops there (LAB_UNEXPECTED): which blade
// was asked for the lock is where the push went. The upload and the blade steps after it are the
// cluster lab's to run (test/support/cluster-lab.ts), which needs the local blade.
let a: VmLab
let b: VmLab
let home: string
let project: string

const hello = (cluster?: unknown) => ({version: '0.1.0', protocol: BLADE_PROTOCOL, account: 'e195701', home: '/gfs2/shien/users/e195701', ...(cluster === undefined ? {} : {cluster})})
const facts = (blade: string, runningVms: number, extra: Record<string, unknown> = {}) => ({
  blade, memoryMiB: 65_536, runningMiB: runningVms * 2048, runningVms, bladeMemoryMiB: 52_428, native: ['x86_64'], emulated: ['aarch64'], drained: false, ...extra,
})
const list = (...slots: string[]) => ({account: 'e195701', role: 'student', limits: {vms: 4, vcpus: 2, memoryMiB: 2048}, domains: slots.map((slot) => ({slot, name: `e195701-${slot}`, state: 'shut off'}))})
const cluster = () => ({self: 'blade-a', blades: [
  {name: 'blade-a', ssh: `127.0.0.1:${a.bladePort}`, native: ['x86_64'], keepFreeMiB: 0},
  {name: 'blade-b', ssh: `127.0.0.1:${b.bladePort}`, native: ['x86_64'], keepFreeMiB: 0},
]})
const push = (...args: string[]) => runShien(['push', '--host', 'labblade', ...args], {home, cwd: project})
/** The `shien blade ...` and `ie-virsh ...` steps each lab blade was asked, by their first words. */
const asked = (lab: VmLab) => lab.commands().map((c) => c.split(' ').slice(0, 4).join(' ').replace(/^sudo -n /, ''))

beforeAll(async () => {
  ;[a, b] = await Promise.all([startVmLab(), startVmLab()])
  // One key logs in to both (a student's key on every blade).
  appendFileSync(join(b.dir, 'authorized_keys'), readFileSync(`${a.clientKey}.pub`))
  ;({home} = labLaptopHome('push-placement-laptop-', [a, b]))
  project = join(home, 'project')
  mkdirSync(project)
  writeFileSync(join(project, 'Vagrantfile'), 'Vagrant.configure("2") do |config|\nend\n')
}, 60_000)
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()])
  rmSync(home, {recursive: true, force: true})
})
beforeEach(() => {
  for (const lab of [a, b]) writeFileSync(join(lab.dir, 'commands.log'), '')
  a.answer('blade hello', hello(cluster()))
  b.answer('blade hello', hello(cluster()))
  a.answer('ie-virsh facts', facts('blade-a', 3))
  b.answer('ie-virsh facts', facts('blade-b', 1))
  a.answer('ie-virsh list', list())
  b.answer('ie-virsh list', list())
})

describe('shien push in a cluster of two lab blades', () => {
  it('asks both blades and goes to the one running fewer VMs, saying why the other was passed over', async () => {
    const r = await push()
    expect(r.stderr).toContain('placing the VM on blade-b: it can take the VM and runs the fewest VMs (x86_64, taken from this laptop until the VM is packaged, 2048 MiB); passed over blade-a (runs 3 VMs, blade-b 1)')
    expect(r.stderr).toContain('LAB_UNEXPECTED')
    expect(asked(a)).toEqual(['shien blade hello --json', 'ie-virsh list', 'ie-virsh facts'])
    expect(asked(b)).toEqual(['ie-virsh facts', 'ie-virsh list', 'shien blade hello --json', 'shien blade lock --json'])
  }, 60_000)

  it('takes the blade --blade names when it can take the VM', async () => {
    const r = await push('--blade', 'blade-a')
    expect(r.stderr).toContain('placing the VM on blade-a: as --blade asked')
    expect(r.stderr).toContain('passed over blade-b (--blade blade-a was asked for)')
    expect(asked(a)).toContain('shien blade lock --json')
    expect(asked(b)).not.toContain('shien blade lock --json')
  }, 60_000)

  it('refuses --blade naming a blade that cannot take the VM, or no blade of the cluster, locking nothing', async () => {
    b.answer('ie-virsh facts', facts('blade-b', 1, {drained: true}))
    const drained = await push('--blade', 'blade-b', '--json')
    expect(drained.exitCode, drained.stdout + drained.stderr).toBe(6)
    expect(drained.json).toMatchObject({error: {code: 'BLADE_CANNOT_TAKE', message: 'blade-b cannot take e195701-01 (x86_64, 2048 MiB): it is drained for maintenance.'}})
    const unknown = await push('--blade', 'blade-c', '--json')
    expect(unknown.exitCode).toBe(2)
    expect(unknown.json).toMatchObject({error: {code: 'UNKNOWN_BLADE'}})
    expect(unknown.json.error.message).toContain('blade-a, blade-b')
    for (const lab of [a, b]) expect(asked(lab)).not.toContain('shien blade lock --json')
  }, 60_000)

  it('sends a re-push to the blade that has the slot, and refuses --blade naming the other', async () => {
    a.answer('ie-virsh list', list('01'))
    const r = await push('--replace')
    expect(r.stderr).toContain('placing the VM on blade-a: the slot is there')
    expect(asked(a)).toContain('shien blade lock --json')
    expect(asked(b)).not.toContain('shien blade lock --json')
    const moved = await push('--replace', '--blade', 'blade-b', '--json')
    expect(moved.exitCode).toBe(6)
    expect(moved.json).toMatchObject({error: {code: 'SLOT_ELSEWHERE'}})
    expect(moved.json.error.message).toContain('e195701-01 is on blade-a, so it cannot be pushed to blade-b')
  }, 60_000)

  it('places around a blade that does not answer', async () => {
    b.answer('ie-virsh facts', {error: {code: 'CONFIG_INVALID', message: 'broken', exitCode: 3, suggestions: []}})
    const r = await push()
    expect(r.stderr).toContain('placing the VM on blade-a')
    expect(r.stderr).toContain('passed over blade-b (does not answer (CONFIG_INVALID: broken')
  }, 60_000)

  it('without a cluster asks the blade nothing more than before', async () => {
    a.answer('blade hello', hello())
    const r = await push()
    expect(r.stderr).not.toContain('placing')
    expect(asked(a)).toEqual(['shien blade hello --json', 'shien blade lock --json'])
    expect(asked(b)).toEqual([])
    const named = await push('--blade', 'blade-a', '--json')
    expect(named.exitCode).toBe(2)
    expect(named.json).toMatchObject({error: {code: 'UNKNOWN_BLADE'}})
    expect(named.json.error.message).toContain('describes no cluster of blades')
  }, 60_000)
})
