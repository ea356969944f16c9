import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {parseVmName} from '../../../src/admin/cluster-admin.js'
import {vmShape} from '../../../src/cluster/vm-shape.js'
import {describeDrain, describeMove, describeRecover} from '../../../src/admin/drain.js'
import {forwardOn} from '../../../src/admin/migrate.js'
import {REPO_ROOT} from '../../support/cli.js'

const blade = (name: string, listenAddress?: string) => ({name, ssh: name, migrationUri: `qemu+ssh://root@${name}/system`, native: ['x86_64' as const], keepFreeMiB: 0, ...(listenAddress ? {listenAddress} : {})})

describe('the admin commands\' reading of a VM', () => {
  it('takes ACCOUNT-SLOT apart, and refuses anything else as a usage error', () => {
    expect(parseVmName('e195701-01')).toEqual({account: 'e195701', slot: '01'})
    expect(parseVmName('shien-cl1-12')).toEqual({account: 'shien-cl1', slot: '12'})
    for (const bad of ['e195701', 'e195701-1', 'e195701-00', 'E195701-01', '../x-01', '-01', 'a b-01']) {
      expect(() => parseVmName(bad), bad).toThrow(expect.objectContaining({code: 'USAGE'}))
    }
  })

  it('reads the architecture and memory of a domain shien renders, in any unit libvirt writes', () => {
    expect(vmShape("<domain><memory unit='KiB'>524288</memory><os><type arch='aarch64' machine='virt'>hvm</type></os></domain>")).toEqual({arch: 'aarch64', memoryMiB: 512})
    expect(vmShape("<domain><memory unit='GiB'>2</memory><os><type arch='x86_64'>hvm</type></os></domain>")).toEqual({arch: 'x86_64', memoryMiB: 2048})
    expect(vmShape('<domain><memory>1048576</memory><os><type arch="x86_64">hvm</type></os></domain>')).toEqual({arch: 'x86_64', memoryMiB: 1024})
  })
})

describe('forwardOn', () => {
  const template = readFileSync(join(REPO_ROOT, 'templates', 'normal.xml'), 'utf8')

  it("puts a rendered domain's SSH forward on the destination's listen address, keeping the port and everything else", () => {
    const xml = template.replaceAll('{{listenAddress}}', '127.0.0.1').replaceAll('{{sshPort}}', '22017')
    const config = {listenAddress: '10.0.0.1'} as Parameters<typeof forwardOn>[1]['config']
    const moved = forwardOn(xml, {config}, blade('blade2', '10.0.0.2'))
    expect(moved).toContain('hostfwd=tcp:10.0.0.2:22017-:22')
    expect(moved).not.toContain('127.0.0.1')
    expect(moved.replace('10.0.0.2', '127.0.0.1')).toBe(xml)
    // A blade without an address of its own takes the config's.
    expect(forwardOn(xml, {config}, blade('blade3'))).toContain('hostfwd=tcp:10.0.0.1:22017-:22')
    // An IPv6 listen address as qemu writes it.
    expect(forwardOn(xml.replace('127.0.0.1', '[::1]'), {config}, blade('blade4', '10.0.0.4'))).toContain('hostfwd=tcp:10.0.0.4:22017-:22')
  })

  it('leaves a domain with no SSH forward as it is', () => {
    const xml = "<domain><devices><interface type='bridge'/></devices></domain>"
    expect(forwardOn(xml, {config: {listenAddress: '10.0.0.1'} as never}, blade('b', '10.0.0.2'))).toBe(xml)
  })
})

describe('what the admin reads', () => {
  it('says where each VM went and how', () => {
    expect(describeMove({vm: 'e1-01', from: 'b1', to: 'b2', how: 'live', downtimeMs: 120, elapsedMs: 2400})).toBe('e1-01: migrated live from b1 to b2 (downtime 120 ms, 2.4 s in all).')
    expect(describeMove({vm: 'e1-02', from: 'b1', to: 'b2', how: 'defined'})).toBe('e1-02: defined on b2 (it was stopped), undefined on b1.')
    expect(describeMove({vm: 'e1-03', from: 'b2', to: 'b2', how: 'none'})).toBe('e1-03 is on b2 already.')
    const mark = {blade: 'b1', since: '2026-12-06T10:00:00.000Z', by: 'admin1'}
    expect(describeDrain({blade: 'b1', mark, moved: [], failed: [{vm: 'e1-04', code: 'NO_BLADE', message: 'No blade can take e1-04.'}]}).split('\n')).toEqual([
      'b1 is drained (since 2026-12-06T10:00:00.000Z, by admin1): placement gives it no new VM until shien admin undrain b1.',
      'e1-04: not moved (NO_BLADE): No blade can take e1-04.',
      '0 moved, 1 not.',
    ])
    const recovered = describeRecover({blade: 'b1', down: 'Failed to connect socket', mark, recovered: [{vm: 'e1-01', to: 'b2', started: true, passedOver: []}], failed: []})
    expect(recovered).toContain('e1-01: defined on b2 and started.')
    expect(recovered).toContain('undefine them there')
  })
})
