import {describe, expect, it} from 'vitest'

import {clusterFromHello} from '../../../src/client/cluster-answer.js'

// A blade's hello describes its cluster; the laptop connects to the addresses in it, so a
// malformed or hostile description is refused with why, and nothing of it is used.
describe('the cluster a blade describes in its hello answer', () => {
  const blades = [{name: 'blade1', ssh: 'blade1.ie.u-ryukyu.ac.jp'}, {name: 'blade2', ssh: '10.0.0.2:2222'}, {name: 'v6', ssh: '[2001:db8::1]:22'}]

  it('is absent without a cluster section (one blade, as before)', () => {
    expect(clusterFromHello({version: '0.1.0', protocol: 4})).toEqual({ok: true})
    expect(clusterFromHello(undefined)).toEqual({ok: true})
  })

  it('is taken when well-formed', () => {
    expect(clusterFromHello({cluster: {self: 'blade2', blades}})).toEqual({ok: true, cluster: {self: 'blade2', blades}})
  })

  it.each([
    ['an address that is an ssh option', {self: 'blade1', blades: [{name: 'blade1', ssh: '-oProxyCommand=touch /tmp/x'}]}, 'blades.0.ssh'],
    ['an address with a user', {self: 'blade1', blades: [{name: 'blade1', ssh: 'root@blade1'}]}, 'blades.0.ssh'],
    ['an address with shell words', {self: 'blade1', blades: [{name: 'blade1', ssh: 'blade1;rm -rf ~'}]}, 'blades.0.ssh'],
    ['a port out of range', {self: 'blade1', blades: [{name: 'blade1', ssh: 'blade1:70000'}]}, 'blades.0.ssh'],
    ['a name that is not a blade name', {self: 'Blade 1', blades: [{name: 'Blade 1', ssh: 'blade1'}]}, 'self'],
    ['a self that is not listed', {self: 'blade9', blades}, 'self'],
    ['a name twice', {self: 'blade1', blades: [{name: 'blade1', ssh: 'a'}, {name: 'blade1', ssh: 'b'}]}, 'name "blade1" is listed twice'],
    ['an address twice', {self: 'blade1', blades: [{name: 'blade1', ssh: 'a'}, {name: 'blade2', ssh: 'a'}]}, 'ssh "a" is listed twice'],
    ['no blades', {self: 'blade1', blades: []}, 'cluster.blades'],
    ['an unknown field', {self: 'blade1', blades, proxy: 'evil'}, 'proxy'],
    ['a blade of the wrong kind', {self: 'blade1', blades: ['blade1']}, 'blades.0'],
  ])('refuses %s', (_what, cluster, named) => {
    const r = clusterFromHello({cluster})
    expect(r.ok).toBe(false)
    expect(r.ok ? '' : r.why).toContain(named)
  })
})
