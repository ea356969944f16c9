import {mkdtempSync, mkdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir, userInfo} from 'node:os'
import {join} from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {describeVmList, mergeBladeLists, unreachableLines, type VmListResult} from '../../../src/client/vm/cluster-list.js'
import {otherBladePlans} from '../../../src/client/vm/cluster-plans.js'
import {planVm} from '../../../src/client/vm/plan.js'
import type {ListedDomain} from '../../../src/virsh/list.js'

const vm = (slot: string, more: Partial<ListedDomain> = {}): ListedDomain => ({slot, name: `e195701-${slot}`, state: 'shut off', ...more})

describe('merging the blades\' lists', () => {
  it('shows each VM once, on the blade that lists it as its own, sorted by slot', () => {
    const merged = mergeBladeLists([
      {blade: 'blade1', list: {domains: [vm('03'), vm('01', {recordedOn: 'blade2', state: 'running'})]}},
      {blade: 'blade2', list: {domains: [vm('01'), vm('02', {sshPort: 22001})]}},
    ])
    expect(merged).toEqual([{...vm('01'), blade: 'blade2'}, {...vm('02', {sshPort: 22001}), blade: 'blade2'}, {...vm('03'), blade: 'blade1'}])
  })

  it('keeps a slot recorded on a blade that did not answer, from the blade that listed it, recordedOn kept', () => {
    const merged = mergeBladeLists([{blade: 'blade1', list: {domains: [vm('01', {recordedOn: 'blade2'})]}}])
    expect(merged).toEqual([{...vm('01', {recordedOn: 'blade2'}), blade: 'blade1'}])
  })

  it('prints a BLADE column on a cluster, and a line for each blade that did not answer', () => {
    const r: VmListResult = {
      account: 'e195701', role: 'student', limits: {vms: 4, vcpus: 2, memoryMiB: 2048} as never,
      domains: [{...vm('01'), blade: 'blade1'}, {...vm('02'), blade: 'blade2'}],
      blades: [{name: 'blade1', ssh: 'b1', reachable: true}, {name: 'blade2', ssh: 'b2', reachable: true}, {name: 'blade3', ssh: 'b3:2222', reachable: false, why: 'connect ECONNREFUSED'}],
    }
    const text = describeVmList(r)
    expect(text.split('\n')[0]).toMatch(/^SLOT\s+NAME\s+BLADE\s+STATE/)
    expect(text).toMatch(/02\s+e195701-02\s+blade2/)
    expect(unreachableLines(r)).toEqual(['Blade blade3 (b3:2222) did not answer, so its VMs are not listed: connect ECONNREFUSED'])
  })

  it('prints ie-virsh\'s own table without a cluster', () => {
    const r: VmListResult = {account: 'e195701', role: 'student', limits: {vms: 4} as never, domains: [vm('01')]}
    expect(describeVmList(r).split('\n')[0]).toMatch(/^SLOT\s+NAME\s+STATE/)
    expect(unreachableLines(r)).toEqual([])
  })
})

describe('reaching the other blades of the cluster', () => {
  const home = mkdtempSync(join(tmpdir(), 'cluster-plans-'))
  mkdirSync(join(home, '.ssh'))
  writeFileSync(join(home, '.ssh', 'config'), [
    'Host blade1', '  HostName blade1.example', '  User e195701', '',
    'Host blade3.example', '  User admin3', '  ProxyJump gw.example', '',
  ].join('\n'))
  afterAll(() => rmSync(home, {recursive: true, force: true}))
  const first = planVm({host: 'blade1', cwd: home, env: {HOME: home}})
  const cluster = {self: 'blade1', blades: [{name: 'blade1', ssh: 'blade1.example'}, {name: 'blade2', ssh: 'blade2.example:2222'}, {name: 'blade3', ssh: 'blade3.example'}]}

  it('resolves each address through ~/.ssh/config; with no User there, the first blade\'s user', () => {
    const others = otherBladePlans(first, cluster)
    expect(others.map((o) => o.name)).toEqual(['blade2', 'blade3'])
    const [b2, b3] = others
    expect(b2.plan.target).toMatchObject({hostName: 'blade2.example', port: 2222, user: 'e195701'})
    expect(b2.plan.naming.bladeSpec).toBe('e195701@blade2.example:2222')
    expect(b3.plan.target).toMatchObject({hostName: 'blade3.example', port: 22, user: 'admin3'})
    expect(b3.plan.target.via.map((h) => h.hostName)).toEqual(['gw.example'])
    expect(b3.plan.naming.bladeSpec).toBe('blade3.example')
    expect(userInfo().username).not.toBe('e195701')
  })
})
