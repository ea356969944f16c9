import {existsSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {afterAll, beforeAll, beforeEach, describe, expect, it} from 'vitest'

import {BLADE_PROTOCOL} from '../../src/protocol/blade-steps.js'
import {runShien} from '../support/cli.js'
import {closedPort} from '../support/system.js'
import {labLaptopHome, startVmLab, type VmLab} from '../support/vm-lab.js'

// What the laptop does with the cluster a blade describes (its hello answer), against a lab blade
// of this test's own (test/support/vm-lab.ts: a real sshd answering from files), never the local
// blade: a hostile description is refused and nothing in it is connected to or run, and another
// blade whose host key the laptop does not know is not trusted on first use.
let lab: VmLab
let home: string
let knownHosts: string
let marker: string

const list = {account: 'e195701', role: 'student', limits: {vms: 4, vcpus: 2, memoryMiB: 2048}, domains: [{slot: '01', name: 'e195701-01', state: 'shut off'}]}
const hello = (cluster: unknown) => ({version: '0.1.0', protocol: BLADE_PROTOCOL, account: 'e195701', home: '/gfs2/shien/users/e195701', cluster})
const shien = (...args: string[]) => runShien(args, {home})

beforeAll(async () => {
  lab = await startVmLab()
  ;({home, knownHosts} = labLaptopHome('vm-list-cluster-laptop-', [lab]))
  marker = join(home, 'proxy-command-ran')
}, 60_000)
afterAll(async () => {
  await lab?.stop()
  rmSync(home, {recursive: true, force: true})
})
beforeEach(() => {
  writeFileSync(knownHosts, `${lab.bladeKnownHost}\n`, {mode: 0o600})
  lab.answer('ie-virsh list', list)
})

describe('the cluster a blade describes, as the laptop takes it', () => {
  it('refuses a description whose address is an ssh option: nothing runs, no other connection, the first blade listed', async () => {
    lab.answer('blade hello', hello({self: 'labblade', blades: [
      {name: 'labblade', ssh: `127.0.0.1:${lab.bladePort}`},
      {name: 'evil', ssh: `-oProxyCommand=touch ${marker}`},
    ]}))
    const logins = lab.bladeLogins()
    const r = await shien('vm', 'list', '--host', 'labblade', '--json')
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    expect(r.json.domains).toMatchObject([{slot: '01', blade: 'labblade'}])
    expect(r.json.clusterProblem).toContain('cluster.blades.1.ssh')
    expect(existsSync(marker)).toBe(false)
    expect(lab.bladeLogins() - logins).toBe(1)

    const human = await shien('vm', 'list', '--host', 'labblade')
    expect(human.exitCode).toBe(0)
    expect(human.stderr).toContain("Only labblade's VMs are listed: the blade described its cluster in a way shien cannot use")
    expect(existsSync(marker)).toBe(false)
  })

  it('does not trust another blade on first use: an unknown host key makes it unreachable and known_hosts stays as it was', async () => {
    // The lab's first "VM" stands for a blade whose host key this laptop has never seen.
    const closed = await closedPort()
    lab.answer('blade hello', hello({self: 'labblade', blades: [
      {name: 'labblade', ssh: `127.0.0.1:${lab.bladePort}`},
      {name: 'stranger', ssh: `127.0.0.1:${lab.vmPorts[0]}`},
      {name: 'down', ssh: `127.0.0.1:${closed}`},
    ]}))
    const r = await shien('vm', 'list', '--host', 'labblade', '--json')
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    expect(r.json.blades[0]).toMatchObject({name: 'labblade', reachable: true})
    expect(r.json.blades[1]).toMatchObject({name: 'stranger', reachable: false})
    expect(r.json.blades[1].why).toMatch(/host key/i)
    expect(r.json.blades[2]).toMatchObject({name: 'down', reachable: false})
    expect(r.json.blades[2].why).toMatch(/ECONNREFUSED|refused/i)
    expect(readFileSync(knownHosts, 'utf8')).toBe(`${lab.bladeKnownHost}\n`)
  })

  it('lists exactly as before when the blade has no cluster section', async () => {
    lab.answer('blade hello', hello(undefined))
    const r = await shien('vm', 'list', '--host', 'labblade', '--json')
    expect(r.exitCode).toBe(0)
    expect(r.json).toEqual(list)
  })
})
