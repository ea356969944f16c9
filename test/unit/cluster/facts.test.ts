import {describe, expect, it} from 'vitest'

import type {ClusterBlade} from '../../../src/cluster/blades.js'
import {factsFromAnswer, factsFromJson} from '../../../src/cluster/facts.js'
import {placeVm} from '../../../src/cluster/placement.js'

const answer = (extra: Record<string, unknown> = {}) => ({
  blade: 'blade1', memoryMiB: 65_536, runningMiB: 4096, runningVms: 2, bladeMemoryMiB: 52_428, native: ['x86_64'], emulated: ['aarch64'], drained: false, ...extra,
})
const blade = (name: string, native: ClusterBlade['native'] = ['x86_64']): ClusterBlade => ({
  name, ssh: `${name}.example`, migrationUri: `qemu+ssh://root@${name}/system`, native, keepFreeMiB: 0,
})

describe("a blade's facts, as placement takes them", () => {
  it('turns a well-formed answer into reachable facts, its bound as capMiB', () => {
    expect(factsFromAnswer('blade1', JSON.stringify(answer()))).toEqual({
      reachable: true, drained: false, memoryMiB: 65_536, runningMiB: 4096, capMiB: 52_428, runningVms: 2, native: ['x86_64'],
    })
  })

  it.each([
    ['not JSON', 'Welcome to blade1!\n{', /not JSON: "Welcome to blade1!\\n\{"/],
    ['a field missing', JSON.stringify({...answer(), runningVms: undefined}), /runningVms: /],
    ['a count as text', JSON.stringify(answer({runningVms: '2'})), /runningVms: /],
    ['negative memory', JSON.stringify(answer({memoryMiB: -1})), /memoryMiB: /],
    ['a fractional count', JSON.stringify(answer({runningVms: 1.5})), /runningVms: /],
    ['an absurd amount', JSON.stringify(answer({memoryMiB: 2 ** 60})), /memoryMiB: /],
    ["Vagrant's arch name", JSON.stringify(answer({native: ['arm64']})), /native\.0: /],
    ['drained as a string', JSON.stringify(answer({drained: 'no'})), /drained: /],
    ['an array', '[]', /\(top level\)/],
  ])('passes a blade over that answers %s', (_what, stdout, why) => {
    const facts = factsFromAnswer('blade1', stdout)
    expect(facts.reachable).toBe(false)
    expect(!facts.reachable && facts.why).toMatch(why)
  })

  it("passes a blade over that answers with another blade's name, or with an error", () => {
    expect(factsFromJson('blade1', answer({blade: 'blade2'}))).toEqual({reachable: false, why: 'answered as blade2, not blade1 (its cluster.self or host name is wrong)'})
    expect(factsFromJson('blade1', {error: {code: 'CONFIG_INVALID', message: 'bad\nconfig', exitCode: 1, suggestions: []}}))
      .toEqual({reachable: false, why: 'answered CONFIG_INVALID: bad config'})
  })

  it('feeds placement: the least busy blade that can take the VM wins, a bad answer is passed over with why', () => {
    const cluster = {blades: [blade('blade1'), blade('blade2'), blade('blade3'), blade('arm1', ['aarch64'])]}
    const facts = new Map([
      ['blade1', factsFromAnswer('blade1', JSON.stringify(answer({runningVms: 3})))],
      ['blade2', factsFromAnswer('blade2', JSON.stringify(answer({blade: 'blade2', runningVms: 1, runningMiB: 1024})))],
      ['blade3', factsFromAnswer('blade3', JSON.stringify(answer({blade: 'blade3', runningVms: 0, memoryMiB: 'lots'})))],
      ['arm1', factsFromAnswer('arm1', JSON.stringify(answer({blade: 'arm1', runningVms: 0, native: ['aarch64']})))],
    ])
    const placed = placeVm(cluster, facts, {name: 'e195701-01', arch: 'x86_64', memoryMiB: 2048})
    expect(placed.blade.name).toBe('blade2')
    expect(placed.passedOver.map((p) => [p.blade, p.code])).toEqual([['blade1', 'BUSIER'], ['blade3', 'UNREACHABLE'], ['arm1', 'NOT_NATIVE']])
    // The blade's own bound counts: 52428 MiB for VMs, 51404 used, so a 2048 MiB VM does not fit.
    const full = new Map([['blade1', factsFromAnswer('blade1', JSON.stringify(answer({runningMiB: 51_404})))]])
    expect(() => placeVm({blades: [blade('blade1')]}, full, {name: 'e195701-01', arch: 'x86_64', memoryMiB: 2048})).toThrow(/has 1024 MiB free for VMs/)
  })
})
