import {describe, expect, it} from 'vitest'

import type {BladeFacts} from '../../../src/cluster/placement.js'
import {clusterFromHello} from '../../../src/client/cluster-answer.js'
import type {ClusterView} from '../../../src/protocol/blade-steps.js'
import type {PushOutputs, PushStage, VirshList} from '../../../src/push/context.js'
import type {PushPlan} from '../../../src/push/plan.js'
import {push} from '../../../src/push/push.js'
import {laptopArch} from '../../../src/push/connect-placement.js'
import {knownBlades} from '../../../src/cluster/placement.js'
import {describePlacement, placePush, slotHolder} from '../../../src/push/push-placement.js'
import {ShienError} from '../../../src/errors.js'

const cluster: ClusterView = {
  self: 'blade1',
  blades: [
    {name: 'blade1', ssh: 'blade1.example', native: ['x86_64'], keepFreeMiB: 0},
    {name: 'blade2', ssh: 'blade2.example:2222', native: ['x86_64'], keepFreeMiB: 4096},
    {name: 'arm1', ssh: '[fd00::7]:22', native: ['aarch64'], keepFreeMiB: 0, maxVms: 8},
  ],
}
const up = (runningVms: number, extra: Partial<Extract<BladeFacts, {reachable: true}>> = {}): BladeFacts => ({
  reachable: true, drained: false, memoryMiB: 65_536, runningMiB: runningVms * 2048, runningVms, native: ['x86_64', 'aarch64'], ...extra,
})
const facts = (a: BladeFacts, b: BladeFacts, c: BladeFacts) => new Map([['blade1', a], ['blade2', b], ['arm1', c]])
const vm = {name: 'e195701-01', arch: 'x86_64' as const, archFrom: 'box' as const, memoryMiB: 2048}

/** What the function threw, as the error it must be. */
function thrown(f: () => unknown): ShienError {
  try {
    f()
  } catch (error) {
    expect(error).toBeInstanceOf(ShienError)
    return error as ShienError
  }
  throw new Error('expected a ShienError')
}

describe('where a push goes in a cluster', () => {
  it('goes to the blade that can take the VM and runs the fewest, each other blade with its reason', () => {
    const placed = placePush({cluster, facts: facts(up(3), up(1), up(0)), vm})
    expect(placed).toEqual({
      blade: 'blade2',
      ssh: 'blade2.example:2222',
      by: 'placement',
      passedOver: [
        {blade: 'blade1', code: 'BUSIER', reason: 'runs 3 VMs, blade2 1'},
        {blade: 'arm1', code: 'NOT_NATIVE', reason: 'runs aarch64 natively, not x86_64'},
      ],
      vm: {arch: 'x86_64', archFrom: 'box', memoryMiB: 2048},
    })
    expect(describePlacement(placed)).toBe('placing the VM on blade2: it can take the VM and runs the fewest VMs (x86_64, 2048 MiB); passed over blade1 (runs 3 VMs, blade2 1), arm1 (runs aarch64 natively, not x86_64)')
  })

  it("applies the cluster entries' keepFreeMiB and maxVms as hello gave them", () => {
    // blade2 keeps 4096 MiB free: 6000 MiB free by libvirt leaves it too little for 2048.
    const placed = placePush({cluster, facts: facts(up(3), up(0, {memoryMiB: 6000, runningMiB: 0}), up(0)), vm})
    expect(placed.blade).toBe('blade1')
    expect(placed.passedOver[0]).toMatchObject({blade: 'blade2', code: 'NO_MEMORY'})
    const full = thrown(() => placePush({cluster, facts: facts(up(3), up(1), up(8)), vm: {...vm, arch: 'aarch64'}}))
    expect(full.message).toContain('arm1: runs 8 VMs, its most (maxVms 8)')
  })

  it('names the laptop as where the architecture came from when the VM is not packaged yet', () => {
    const placed = placePush({cluster, facts: facts(up(0), up(1), up(0)), vm: {...vm, arch: 'aarch64', archFrom: 'laptop'}})
    expect(placed.blade).toBe('arm1')
    expect(describePlacement(placed)).toContain('(aarch64, taken from this laptop until the VM is packaged, 2048 MiB)')
  })

  it('takes the blade --blade names when it can take the VM, the others not asked', () => {
    const placed = placePush({cluster, facts: facts(up(0), up(5), up(0)), vm: {...vm, blade: 'blade2'}})
    expect(placed.blade).toBe('blade2')
    expect(placed.by).toBe('--blade')
    expect(placed.passedOver).toEqual([
      {blade: 'blade1', code: 'NOT_ASKED', reason: '--blade blade2 was asked for'},
      {blade: 'arm1', code: 'NOT_NATIVE', reason: 'runs aarch64 natively, not x86_64'},
    ])
  })

  it('refuses --blade naming a blade that cannot take the VM, with the reason and the blades that can', () => {
    const error = thrown(() => placePush({cluster, facts: facts(up(0), up(0, {drained: true}), up(0)), vm: {...vm, blade: 'blade2'}}))
    expect(error.code).toBe('BLADE_CANNOT_TAKE')
    expect(error.exitCode).toBe(6)
    expect(error.message).toBe('blade2 cannot take e195701-01 (x86_64, 2048 MiB): it is drained for maintenance.')
    expect(error.suggestions).toEqual(['Leave out --blade to let shien choose (blade1 can take it).'])
  })

  it('refuses --blade naming no blade of the cluster (exit 2), even when the slot is on a blade', () => {
    for (const holder of [undefined, 'blade1']) {
      const error = thrown(() => placePush({cluster, facts: facts(up(0), up(0), up(0)), holder, vm: {...vm, blade: 'blade9'}}))
      expect(error.code).toBe('UNKNOWN_BLADE')
      expect(error.exitCode).toBe(2)
      expect(error.message).toContain('blade1, blade2, arm1')
    }
  })

  it('sends a re-push to the blade that has the slot, even when placement would choose another', () => {
    // blade2 is busier and short of memory: a re-push goes there all the same.
    const placed = placePush({cluster, facts: facts(up(0), up(9, {memoryMiB: 1024}), up(0)), holder: 'blade2', vm})
    expect(placed.blade).toBe('blade2')
    expect(placed.by).toBe('slot')
    expect(placed.passedOver.map((p) => [p.blade, p.code])).toEqual([['blade1', 'SLOT_ON_OTHER'], ['arm1', 'SLOT_ON_OTHER']])
    expect(placed.passedOver[0].reason).toBe('e195701-01 is on blade2, where the push replaces it (a slot is one VM across the blades)')
    expect(placePush({cluster, facts: facts(up(0), up(9), up(0)), holder: 'blade2', vm: {...vm, blade: 'blade2'}}).blade).toBe('blade2')
  })

  it('refuses --blade naming another blade than the one that has the slot: moving it is an admin\'s migration', () => {
    const error = thrown(() => placePush({cluster, facts: facts(up(0), up(0), up(0)), holder: 'blade2', vm: {...vm, blade: 'blade1'}}))
    expect(error.code).toBe('SLOT_ELSEWHERE')
    expect(error.exitCode).toBe(6)
    expect(error.message).toContain('e195701-01 is on blade2, so it cannot be pushed to blade1')
    expect(error.message).toContain('shien admin migrate, not available yet')
    expect(error.suggestions[0]).toBe('Leave out --blade to push to blade2, where the slot is,')
  })

  it('refuses a slot recorded on a blade the cluster does not list', () => {
    const error = thrown(() => placePush({cluster, facts: facts(up(0), up(0), up(0)), holder: 'old9', vm}))
    expect(error.code).toBe('SLOT_ELSEWHERE')
    expect(error.message).toContain('recorded on old9, a blade the cluster does not list')
  })

  it('refuses when no blade can take the VM, listing every reason', () => {
    const error = thrown(() => placePush({cluster, facts: facts({reachable: false, why: 'refused'}, up(0, {drained: true}), up(0)), vm}))
    expect(error.code).toBe('NO_BLADE')
    expect(error.message).toContain('blade1: does not answer (refused)')
  })
})

describe('which blade has the slot, by the blades\' lists', () => {
  const list = (...domains: NonNullable<VirshList['domains']>): VirshList => ({limits: {vms: 4, memoryMiB: 2048}, domains})
  const d = (slot: string, extra: {recordedOn?: string} = {}) => ({slot, name: `e195701-${slot}`, state: 'shut off', ...extra})

  it('is the blade listing it as its own, else the blade its record names, else none', () => {
    expect(slotHolder(new Map([['blade1', list(d('02'))], ['blade2', list(d('01'))]]), '01')).toBe('blade2')
    // Defined on blade1 but recorded on arm1, which did not answer: the record decides.
    expect(slotHolder(new Map([['blade1', list(d('01', {recordedOn: 'arm1'}))], ['arm1', undefined]]), '01')).toBe('arm1')
    expect(slotHolder(new Map([['blade1', list(d('01', {recordedOn: 'blade2'}))], ['blade2', list(d('01'))]]), '01')).toBe('blade2')
    expect(slotHolder(new Map([['blade1', list(d('02'))], ['blade2', undefined]]), '01')).toBeUndefined()
  })
})

describe("the cluster as the laptop learns it from hello", () => {
  it("takes placement's fields, and puts no bound where an older blade leaves them out", () => {
    const answer = clusterFromHello({cluster: {self: 'blade1', blades: [{name: 'blade1', ssh: 'blade1.example'}, cluster.blades[2]]}})
    expect(answer.ok).toBe(true)
    const blades = knownBlades((answer as {cluster: ClusterView}).cluster)
    expect(blades).toEqual([
      {name: 'blade1', ssh: 'blade1.example', native: ['x86_64', 'aarch64'], keepFreeMiB: 0},
      {name: 'arm1', ssh: '[fd00::7]:22', native: ['aarch64'], keepFreeMiB: 0, maxVms: 8},
    ])
  })

  it('refuses placement fields of the wrong kind', () => {
    for (const bad of [{native: ['arm64']}, {keepFreeMiB: -1}, {maxVms: 0}, {maxVms: 1.5}, {keepFreeMiB: '1'}]) {
      const answer = clusterFromHello({cluster: {self: 'blade1', blades: [{name: 'blade1', ssh: 'blade1.example', ...bad}]}})
      expect(answer.ok, JSON.stringify(bad)).toBe(false)
    }
  })
})

describe("the architecture of a VM not packaged yet", () => {
  it("is the laptop's", () => {
    expect(laptopArch('x64')).toBe('x86_64')
    expect(laptopArch('arm64')).toBe('aarch64')
  })
})

describe('the result of a push placed on another blade than the one named', () => {
  it('names that blade as its host, with the placement', async () => {
    const first = {user: 'e195701', alias: 'blade1.example', hostName: 'blade1.example', port: 22}
    const chosen = {user: 'e195701', alias: '127.0.0.1:2222', hostName: '127.0.0.1', port: 2222}
    const placement = placePush({cluster, facts: facts(up(3), up(1), up(0)), vm})
    const plan = {slot: '01', name: 'web', target: first, naming: {bladeSpec: 'blade1.example', home: '/nonexistent'}} as unknown as PushPlan
    const connect: PushStage = {
      id: 'connect',
      async run(ctx) {
        // What the connect stage does once placement chose blade2.
        ctx.plan = {...ctx.plan, target: chosen as PushPlan['target']}
        ctx.out.connect = {placement} as PushOutputs['connect']
      },
    }
    const result = await push(plan, {signal: new AbortController().signal, confirmHostKey: async () => false, stages: [connect]})
    expect(result.host).toBe('127.0.0.1:2222')
    expect(result.vm).toBe('e195701-01')
    expect(result.placement).toEqual(placement)
    // The VM's host keys would be recorded under the chosen blade's alias.
    expect(result.hostKeys).toMatchObject({recorded: false, alias: 'shien-e195701-01.127.0.0.1-2222'})
  })
})
