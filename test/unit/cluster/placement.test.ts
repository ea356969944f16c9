import {describe, expect, it} from 'vitest'

import type {ClusterBlade} from '../../../src/cluster/blades.js'
import {freeMiB, placeVm, type BladeFacts} from '../../../src/cluster/placement.js'

const blade = (name: string, extra: Partial<ClusterBlade> = {}): ClusterBlade => ({
  name, ssh: `${name}.example`, migrationUri: `qemu+ssh://root@${name}/system`, native: ['x86_64'], keepFreeMiB: 0, ...extra,
})
const up = (runningVms: number, extra: Partial<Extract<BladeFacts, {reachable: true}>> = {}): BladeFacts => ({
  reachable: true, drained: false, memoryMiB: 65_536, runningMiB: runningVms * 2048, runningVms, ...extra,
})
const vm = {name: 'e195701-01', arch: 'x86_64' as const, memoryMiB: 2048}

describe('placing a VM', () => {
  it('takes the blade running the fewest VMs, and says why each other one was passed over', () => {
    const cluster = {blades: [blade('blade1'), blade('blade2'), blade('blade3')]}
    const placed = placeVm(cluster, new Map([['blade1', up(5)], ['blade2', up(2)], ['blade3', up(3)]]), vm)
    expect(placed.blade.name).toBe('blade2')
    expect(placed.passedOver).toEqual([
      {blade: 'blade1', code: 'BUSIER', reason: 'runs 5 VMs, blade2 2'},
      {blade: 'blade3', code: 'BUSIER', reason: 'runs 3 VMs, blade2 2'},
    ])
  })

  it('breaks a tie by name, whatever the config\'s order', () => {
    const cluster = {blades: [blade('blade3'), blade('blade1'), blade('blade2')]}
    const placed = placeVm(cluster, new Map([['blade1', up(2)], ['blade2', up(2)], ['blade3', up(2)]]), vm)
    expect(placed.blade.name).toBe('blade1')
    expect(placed.passedOver.map((p) => [p.blade, p.code])).toEqual([['blade3', 'TIE'], ['blade2', 'TIE']])
    expect(placed.passedOver[0].reason).toBe('runs as many VMs as blade1 (2), which comes first by name')
  })

  it('skips a blade that does not answer, one that is drained, and one without the VM\'s architecture natively', () => {
    const cluster = {blades: [blade('arm1', {native: ['aarch64']}), blade('blade1'), blade('blade2'), blade('blade3')]}
    const facts = new Map<string, BladeFacts>([
      ['arm1', up(0)],
      ['blade1', {reachable: false, why: 'ssh: connect to host blade1 port 22: No route to host'}],
      ['blade2', up(0, {drained: true})],
      ['blade3', up(9)],
    ])
    const placed = placeVm(cluster, facts, vm)
    expect(placed.blade.name).toBe('blade3')
    expect(placed.passedOver).toEqual([
      {blade: 'arm1', code: 'NOT_NATIVE', reason: 'runs aarch64 natively, not x86_64'},
      {blade: 'blade1', code: 'UNREACHABLE', reason: 'does not answer (ssh: connect to host blade1 port 22: No route to host)'},
      {blade: 'blade2', code: 'DRAINED', reason: 'is drained for maintenance'},
    ])
    // An aarch64 VM goes to the one blade that runs it natively.
    expect(placeVm(cluster, facts, {...vm, arch: 'aarch64'}).blade.name).toBe('arm1')
  })

  it('takes the blade\'s own word on what it runs natively over the config (no KVM there now)', () => {
    const cluster = {blades: [blade('blade1'), blade('blade2')]}
    const placed = placeVm(cluster, new Map([['blade1', up(0, {native: []})], ['blade2', up(4, {native: ['x86_64']})]]), vm)
    expect(placed.blade.name).toBe('blade2')
    expect(placed.passedOver).toEqual([{blade: 'blade1', code: 'NOT_NATIVE', reason: 'runs no architecture natively now, not x86_64'}])
  })

  it('needs the VM\'s memory free: libvirt\'s memory minus the running VMs\', what is kept free, and the blade\'s own bound', () => {
    const cluster = {blades: [blade('blade1', {keepFreeMiB: 4096}), blade('blade2'), blade('blade3')]}
    const facts = new Map<string, BladeFacts>([
      ['blade1', up(1, {memoryMiB: 8192, runningMiB: 3000})], // 8192 - 3000 - 4096 = 1096
      ['blade2', up(1, {memoryMiB: 65_536, runningMiB: 10_000, capMiB: 11_000})], // the bound leaves 1000
      ['blade3', up(7, {memoryMiB: 16_384, runningMiB: 14_336})], // exactly 2048 left
    ])
    expect(freeMiB(cluster.blades[0], facts.get('blade1') as Extract<BladeFacts, {reachable: true}>)).toBe(1096)
    const placed = placeVm(cluster, facts, vm)
    expect(placed.blade.name).toBe('blade3')
    expect(placed.passedOver).toEqual([
      {blade: 'blade1', code: 'NO_MEMORY', reason: 'has 1096 MiB free for VMs (8192 MiB, 3000 MiB used by 1 VM running, 4096 kept free), e195701-01 needs 2048'},
      {blade: 'blade2', code: 'NO_MEMORY', reason: 'has 1000 MiB free for VMs (65536 MiB, 10000 MiB used by 1 VM running, VMs may have 11000 together), e195701-01 needs 2048'},
    ])
  })

  it('skips a blade at its VM bound', () => {
    const cluster = {blades: [blade('blade1', {maxVms: 2}), blade('blade2')]}
    const placed = placeVm(cluster, new Map([['blade1', up(2)], ['blade2', up(6)]]), vm)
    expect(placed.blade.name).toBe('blade2')
    expect(placed.passedOver).toEqual([{blade: 'blade1', code: 'FULL', reason: 'runs 2 VMs, its most (maxVms 2)'}])
  })

  it('counts a blade it has no facts for as not answering', () => {
    const placed = placeVm({blades: [blade('blade1'), blade('blade2')]}, new Map([['blade2', up(3)]]), vm)
    expect(placed).toMatchObject({blade: {name: 'blade2'}, passedOver: [{blade: 'blade1', code: 'UNREACHABLE'}]})
  })

  it('places on the one blade of a cluster-less config as before', () => {
    expect(placeVm({blades: [blade('vm')]}, new Map([['vm', up(0)]]), vm)).toEqual({blade: blade('vm'), passedOver: []})
  })

  it('is refused with NO_BLADE, each blade\'s reason listed, when none can take the VM', () => {
    const cluster = {blades: [blade('blade1'), blade('blade2')]}
    const facts = new Map<string, BladeFacts>([['blade1', up(3, {memoryMiB: 7000})], ['blade2', {reachable: false, why: 'Connection refused'}]])
    expect(() => placeVm(cluster, facts, vm)).toThrow(expect.objectContaining({
      code: 'NO_BLADE',
      exitCode: 6,
      message: 'No blade can take e195701-01 (x86_64, 2048 MiB):\n  - blade1: has 856 MiB free for VMs (7000 MiB, 6144 MiB used by 3 VMs running), e195701-01 needs 2048\n  - blade2: does not answer (Connection refused)',
      suggestions: ['Try again later; ask an admin if blades stay unreachable or drained.'],
    }))
    const full = new Map<string, BladeFacts>([['blade1', up(3, {memoryMiB: 7000})], ['blade2', up(3, {memoryMiB: 7000})]])
    expect(() => placeVm(cluster, full, vm)).toThrow(expect.objectContaining({suggestions: ['Stop a VM you do not need (shien vm stop), or try again later.']}))
    expect(() => placeVm(cluster, full, {...vm, arch: 'aarch64'})).toThrow(expect.objectContaining({
      suggestions: ['No blade runs aarch64 natively: push a box of an architecture the blades run (docs/box-formats.md).'],
    }))
  })
})

describe('placing a VM on the blade --blade names', () => {
  const cluster = {blades: [blade('blade1'), blade('blade2'), blade('blade3')]}
  const facts = new Map<string, BladeFacts>([['blade1', up(0)], ['blade2', up(5)], ['blade3', up(1, {drained: true})]])

  it('takes that blade even when another runs fewer VMs', () => {
    const placed = placeVm(cluster, facts, {...vm, blade: 'blade2'})
    expect(placed.blade.name).toBe('blade2')
    expect(placed.passedOver).toEqual([
      {blade: 'blade1', code: 'NOT_ASKED', reason: '--blade blade2 was asked for'},
      {blade: 'blade3', code: 'DRAINED', reason: 'is drained for maintenance'},
    ])
  })

  it('is refused with the reason when that blade cannot take the VM, naming those that can', () => {
    expect(() => placeVm(cluster, facts, {...vm, blade: 'blade3'})).toThrow(expect.objectContaining({
      code: 'BLADE_CANNOT_TAKE',
      exitCode: 6,
      message: 'blade3 cannot take e195701-01 (x86_64, 2048 MiB): it is drained for maintenance.',
      suggestions: ['Leave out --blade to let shien choose (blade1, blade2 can take it).'],
    }))
    expect(() => placeVm(cluster, facts, {...vm, arch: 'aarch64', blade: 'blade1'})).toThrow(expect.objectContaining({
      message: 'blade1 cannot take e195701-01 (aarch64, 2048 MiB): it runs x86_64 natively, not aarch64.',
      suggestions: ['No other blade can take it either right now; try again later.'],
    }))
  })

  it('is a usage error for a blade the cluster does not have', () => {
    expect(() => placeVm(cluster, facts, {...vm, blade: 'blade9'})).toThrow(expect.objectContaining({code: 'UNKNOWN_BLADE', exitCode: 2}))
  })
})
