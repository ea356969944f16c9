import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {bladeNamed, clusterOf, clusterView, listenAddressOf, sshAddressOf} from '../../../src/cluster/blades.js'
import {clusterFromHello} from '../../../src/client/cluster-answer.js'
import {DEFAULT_BLADE_CONFIG, loadBladeConfig} from '../../../src/config/blade-config.js'

const blade1 = {name: 'blade1', ssh: 'blade1.ie.u-ryukyu.ac.jp', migrationUri: 'qemu+ssh://root@blade1/system', native: ['x86_64']}
const blade2 = {name: 'blade2', ssh: '10.0.0.2:2222', migrationUri: 'qemu+tls://blade2/system', native: ['x86_64'], keepFreeMiB: 4096}
const arm1 = {name: 'arm1', ssh: '[fd00::7]:22', migrationUri: 'qemu+unix:///system?socket=/run/arm1/libvirt-sock', native: ['aarch64'], maxVms: 8, listenAddress: '127.0.0.3'}

describe('the cluster section of /etc/shien/config.json', () => {
  let dir: string
  let path: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shien-cluster-config-'))
    path = join(dir, 'config.json')
  })
  afterEach(() => rm(dir, {recursive: true, force: true}))

  const load = async (cluster: unknown) => {
    await writeFile(path, JSON.stringify({cluster}), {mode: 0o644})
    return loadBladeConfig(path)
  }
  const refusal = async (cluster: unknown): Promise<string> => {
    try {
      await load(cluster)
    } catch (error) {
      expect(error).toMatchObject({code: 'CONFIG_INVALID', exitCode: 3})
      return (error as Error).message
    }
    throw new Error('the config was accepted')
  }

  it('reads the blades, with keepFreeMiB defaulting to 0 and self naming this blade', async () => {
    const config = await load({blades: [blade1, blade2, arm1], self: 'blade2'})
    expect(config.cluster?.blades.map((b) => [b.name, b.keepFreeMiB])).toEqual([['blade1', 0], ['blade2', 4096], ['arm1', 0]])
    const cluster = clusterOf(config, {hostname: 'whatever', native: []})
    expect(cluster).toMatchObject({configured: true, self: {name: 'blade2', ssh: '10.0.0.2:2222'}})
    expect(cluster.blades.map((b) => b.name)).toEqual(['blade1', 'blade2', 'arm1'])
  })

  it('without self, is the blade named as the host (its first label), so every blade can have the same file', async () => {
    const config = await load({blades: [blade1, blade2]})
    expect(clusterOf(config, {hostname: 'blade1.ie.u-ryukyu.ac.jp', native: []}).self.name).toBe('blade1')
    expect(clusterOf(config, {hostname: 'blade2', native: []}).self.name).toBe('blade2')
    expect(clusterOf(config, {hostname: 'Blade2.IE.u-ryukyu.ac.jp', native: []}).self.name).toBe('blade2')
    expect(() => clusterOf(config, {hostname: 'laptop.local', native: []})).toThrow(expect.objectContaining({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('no entry of cluster.blades (blade1, blade2) is named "laptop"'),
    }))
  })

  it('without the section, is one blade named after this machine, as before', () => {
    const cluster = clusterOf(DEFAULT_BLADE_CONFIG, {hostname: 'VM.example', native: ['x86_64']})
    expect(cluster).toEqual({
      configured: false,
      blades: [cluster.self],
      self: {name: 'vm', ssh: 'VM.example', migrationUri: 'qemu:///system', native: ['x86_64'], keepFreeMiB: 0},
    })
  })

  it('refuses two blades of one name, one SSH address or one migration URI, naming the entry', async () => {
    expect(await refusal({blades: [blade1, {...blade2, name: 'blade1'}]})).toContain('cluster.blades.1.name: "blade1" is also blade 0\'s name; each blade needs its own')
    expect(await refusal({blades: [blade1, {...blade2, ssh: blade1.ssh}]})).toContain('cluster.blades.1.ssh: "blade1.ie.u-ryukyu.ac.jp" is also blade 0\'s ssh')
    expect(await refusal({blades: [blade1, {...blade2, migrationUri: blade1.migrationUri}]})).toContain('cluster.blades.1.migrationUri: "qemu+ssh://root@blade1/system" is also blade 0\'s migrationUri')
  })

  it('refuses a self that is not listed', async () => {
    expect(await refusal({blades: [blade1, blade2], self: 'blade3'})).toBe(`${path} is not valid: cluster.self: "blade3" is not the name of any of cluster.blades (blade1, blade2).`)
  })

  it('refuses a migration URI that is not qemu+ssh, qemu+tls or qemu+unix to the system instance', async () => {
    for (const [uri, said] of [
      ['qemu:///system', 'a qemu:// URI "qemu:///system"'],
      ['qemu+tcp://blade2/system', 'a qemu+tcp:// URI'],
      ['qemu+ssh://root@blade2/session', 'a URI of libvirt\'s /session instance'],
      ['blade2', 'not a URI "blade2"'],
    ]) {
      const message = await refusal({blades: [{...blade1, migrationUri: uri}]})
      expect(message).toContain('cluster.blades.0.migrationUri: expected a qemu+ssh://, qemu+tls:// or qemu+unix:// URI of the system instance')
      expect(message).toContain(said)
    }
  })

  it('refuses architectures, names, SSH addresses, listen addresses and capacities that are not what they should be', async () => {
    expect(await refusal({blades: [{...blade1, native: ['amd64']}]})).toContain('cluster.blades.0.native.0: expected one of "x86_64", "aarch64", got "amd64"')
    expect(await refusal({blades: [{...blade1, native: []}]})).toContain('cluster.blades.0.native: expected at least one architecture')
    expect(await refusal({blades: [{...blade1, name: 'Blade_1'}]})).toContain('cluster.blades.0.name: expected a blade name')
    for (const ssh of ['root@blade1', 'blade1:0', 'blade1:70000', '[not-v6]:22', 'blade1 -oProxyCommand=x', '-oProxyCommand=x']) {
      expect(await refusal({blades: [{...blade1, ssh}]}), ssh).toContain('cluster.blades.0.ssh: expected HOST, HOST:PORT or [IPV6]:PORT')
    }
    expect(await refusal({blades: [{...blade1, listenAddress: 'blade1'}]})).toContain('cluster.blades.0.listenAddress: expected an IP address')
    expect(await refusal({blades: [{...blade1, keepFreeMiB: -1}]})).toContain('cluster.blades.0.keepFreeMiB')
    expect(await refusal({blades: [{...blade1, maxVms: 0}]})).toContain('cluster.blades.0.maxVms')
    expect(await refusal({blades: [{...blade1, memory: 4096}]})).toContain('cluster.blades.0.memory: not a known setting')
    expect(await refusal({blades: []})).toContain('cluster.blades: expected at least one blade')
    expect(await refusal({blades: [blade1], master: 'blade1'})).toContain('cluster.master: not a known setting')
  })
})

describe('a blade of the cluster', () => {
  const cluster = clusterOf({...DEFAULT_BLADE_CONFIG, cluster: {blades: [
    {...blade1, native: ['x86_64'], keepFreeMiB: 0},
    {...blade2, native: ['x86_64']},
    {...arm1, native: ['aarch64'], keepFreeMiB: 0},
  ]}}, {hostname: 'blade1', native: []})

  it('is found by name; an unknown name is a usage error listing the blades', () => {
    expect(bladeNamed(cluster, 'arm1').ssh).toBe('[fd00::7]:22')
    expect(() => bladeNamed(cluster, 'blade9')).toThrow(expect.objectContaining({
      code: 'UNKNOWN_BLADE', exitCode: 2, message: 'There is no blade "blade9" in the cluster; the blades are blade1, blade2, arm1.',
    }))
  })

  it('has its SSH address taken apart into host and port', () => {
    expect(sshAddressOf(bladeNamed(cluster, 'blade1'))).toEqual({host: 'blade1.ie.u-ryukyu.ac.jp'})
    expect(sshAddressOf(bladeNamed(cluster, 'blade2'))).toEqual({host: '10.0.0.2', port: 2222})
    expect(sshAddressOf(bladeNamed(cluster, 'arm1'))).toEqual({host: 'fd00::7', port: 22})
  })

  it('listens on its own address where it has one, else on the config\'s', () => {
    expect(listenAddressOf(bladeNamed(cluster, 'arm1'), DEFAULT_BLADE_CONFIG)).toBe('127.0.0.3')
    expect(listenAddressOf(bladeNamed(cluster, 'blade1'), {listenAddress: '10.0.0.1'})).toBe('10.0.0.1')
  })

  it("is told to the laptop by names, SSH addresses and placement's fields only, in a form the laptop's check takes", () => {
    const view = clusterView(cluster)
    // No migration URI and no listen address: the laptop has no use for them.
    expect(view).toEqual({self: 'blade1', blades: [
      {name: 'blade1', ssh: 'blade1.ie.u-ryukyu.ac.jp', native: ['x86_64'], keepFreeMiB: 0},
      {name: 'blade2', ssh: '10.0.0.2:2222', native: ['x86_64'], keepFreeMiB: 4096},
      {name: 'arm1', ssh: '[fd00::7]:22', native: ['aarch64'], keepFreeMiB: 0, maxVms: 8},
    ]})
    expect(clusterFromHello({cluster: view})).toEqual({ok: true, cluster: view})
    // Without a cluster section there is nothing to tell.
    expect(clusterView(clusterOf(DEFAULT_BLADE_CONFIG, {hostname: 'vm', native: ['x86_64']}))).toBeUndefined()
  })
})
