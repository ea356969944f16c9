import {readFile} from 'node:fs/promises'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'

import {endpointFor, forwardsOf, parseDomifaddr, runningDomains, type LiveHypervisor} from '../../../src/audit/live/domains.js'
import {REPO_ROOT} from '../../support/cli.js'

/** The domain XML as ie-virsh's normal template renders it (placeholders filled in). */
async function templateXml(listen: string, port: number): Promise<string> {
  const template = await readFile(join(REPO_ROOT, 'templates', 'normal.xml'), 'utf8')
  return template.replace(/\{\{\{?(\w+)\}?\}\}/g, (_, k: string) => ({listenAddress: listen, sshPort: String(port), name: 'x', domainType: 'qemu'})[k] ?? '1')
}

describe('forwardsOf', () => {
  it('reads the SSH forward of ie-virsh\'s template, and every other hostfwd', async () => {
    expect(forwardsOf(await templateXml('127.0.0.1', 22001))).toEqual([{guestPort: 22, host: '127.0.0.1', port: 22001}])
    expect(forwardsOf(await templateXml('0.0.0.0', 22002))).toEqual([{guestPort: 22, host: '127.0.0.1', port: 22002}])
    const extra = "<domain xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><qemu:commandline><qemu:arg value='-netdev'/>"
      + "<qemu:arg value='user,id=n,hostfwd=tcp::8080-:80,hostfwd=udp::53-:53,hostfwd=tcp:10.0.0.5:2222-10.0.2.15:22'/></qemu:commandline></domain>"
    expect(forwardsOf(extra)).toEqual([{guestPort: 80, host: '127.0.0.1', port: 8080}, {guestPort: 22, host: '10.0.0.5', port: 2222}])
    expect(forwardsOf('')).toEqual([])
  })
})

describe('parseDomifaddr', () => {
  it('takes the addresses of virsh domifaddr, without link-local IPv6', () => {
    const out = [' Name       MAC address          Protocol     Address', '-'.repeat(64),
      ' vnet0      52:54:00:9a:1b:2c    ipv4         192.168.122.45/24', ' -          -                    ipv6         fe80::5054:ff:fe9a:1b2c/64',
      ' -          -                    ipv6         2001:db8::45/64', ''].join('\n')
    expect(parseDomifaddr(out)).toEqual(['192.168.122.45', '2001:db8::45'])
  })
})

describe('runningDomains and endpointFor', () => {
  it('names account and slot for shien domains, and reaches a port by its forward or else an address', async () => {
    const hv: LiveHypervisor = {
      listRunning: async () => ['webserver', 'e195701-04'],
      dumpXml: async (name) => (name === 'e195701-04' ? templateXml('127.0.0.1', 22004) : ''),
      addresses: async (name) => (name === 'webserver' ? ['192.168.122.7'] : []),
    }
    const [shien, other] = await runningDomains(hv, {})
    expect(shien).toEqual({name: 'e195701-04', account: 'e195701', slot: '04', reachedVia: {forwards: [{guestPort: 22, host: '127.0.0.1', port: 22004}], addresses: []}})
    expect(other).toEqual({name: 'webserver', reachedVia: {forwards: [], addresses: ['192.168.122.7']}})
    expect(endpointFor(shien, 22)).toEqual({host: '127.0.0.1', port: 22004, via: 'forward'})
    expect(endpointFor(shien, 80)).toBeUndefined()
    expect(endpointFor(other, 80)).toEqual({host: '192.168.122.7', port: 80, via: 'address'})
  })
})
