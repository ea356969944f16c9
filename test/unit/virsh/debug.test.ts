import {readFile} from 'node:fs/promises'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {ExitCode} from '../../../src/errors.js'
import {gdbStubOf} from '../../../src/virsh/gdb-stub.js'
import {Harness} from './harness.js'

describe('ie-virsh debug (fake libvirt, real port pool files)', () => {
  const h = new Harness()
  beforeEach(() => h.setUp())
  afterEach(() => h.tearDown())

  it('takes the lowest free port, records this blade with it, and starts the VM paused with --stop', async () => {
    await h.run(['define', '01'])
    expect(await h.run(['debug', '01', '--stop', '--json'])).toBe(0)
    expect(h.json()).toMatchObject({name: 'e195701-01', state: 'paused', debugPort: 23000, stopped: true, debugHost: '127.0.0.1'})
    expect(h.json().gdb).toBe("gdb -ex 'target remote 127.0.0.1:23000'")
    expect(await readFile(join(h.root, 'ports', 'debug', '23000'), 'utf8')).toBe('e195701-01 blade1\n')
    expect(gdbStubOf(h.hv.domains.get('e195701-01')!.xml)).toEqual({address: '127.0.0.1', port: 23000})
    expect(h.hv.calls.at(-1)).toBe('start e195701-01 --paused')
  })

  it('refuses a running VM, and one whose limits do not allow debugging', async () => {
    await h.run(['define', '01'])
    await h.run(['start', '01'])
    expect(await h.run(['debug', '01', '--json'])).toBe(ExitCode.refused)
    expect(h.json().error).toMatchObject({code: 'DOMAIN_RUNNING', suggestions: ['Stop it first: sudo ie-virsh destroy 01']})
    await h.writeConfig({limits: {default: {vms: 4, vcpus: 1, memoryMiB: 256, debug: false}, groups: {kernel: {debug: true}}}})
    await h.run(['destroy', '01'])
    expect(await h.run(['debug', '01', '--json'])).toBe(ExitCode.refused)
    expect(h.json().error.code).toBe('DEBUG_NOT_ALLOWED')
    // k198584 is in the kernel group.
    await h.run(['define', '01'], 1002)
    expect(await h.run(['debug', '01', '--json'], 1002)).toBe(0)
    expect(await h.portFiles('debug')).toEqual(['23000'])
  })

  it('returns the port and the stub when libvirt cannot start the VM', async () => {
    await h.run(['define', '01'])
    h.hv.failStart = true
    expect(await h.run(['debug', '01'])).toBe(ExitCode.remote)
    expect(await h.portFiles('debug')).toEqual([])
    expect(gdbStubOf(h.hv.domains.get('e195701-01')!.xml)).toBeUndefined()
  })

  it("reclaims this blade's ports of stopped VMs on any call, and leaves other blades' ports alone", async () => {
    for (const slot of ['01', '02']) await h.run(['define', slot])
    await h.run(['debug', '01'])
    await h.run(['debug', '02'])
    expect(await h.portFiles('debug')).toEqual(['23000', '23001'])
    h.hv.domains.get('e195701-01')!.state = 'shut off'
    const {writeFile} = await import('node:fs/promises')
    await writeFile(join(h.root, 'ports', 'debug', '23001'), 'e195701-02 blade2\n')
    h.hv.domains.get('e195701-02')!.state = 'shut off'
    expect(await h.run(['list'], 1002)).toBe(0)
    expect(await h.portFiles('debug')).toEqual(['23001'])
  })

  it('says the pool is empty when every port is taken', async () => {
    for (const slot of ['01', '02', '03']) await h.run(['define', slot])
    await h.run(['debug', '01'])
    await h.run(['debug', '02'])
    expect(await h.run(['debug', '03', '--json'])).toBe(ExitCode.refused)
    expect(h.json().error).toMatchObject({code: 'POOL_EMPTY', message: 'All debug ports 23000-23001 are in use.'})
    expect(h.hv.domains.get('e195701-03')!.state).toBe('shut off')
  })

  it('drops a stale stub at a plain start and frees the port at destroy', async () => {
    await h.run(['define', '01'])
    await h.run(['debug', '01'])
    expect(await h.run(['destroy', '01', '--json'])).toBe(0)
    expect(h.json()).toMatchObject({debugPortFreed: 23000})
    await h.run(['start', '01'])
    expect(gdbStubOf(h.hv.domains.get('e195701-01')!.xml)).toBeUndefined()
    expect(await h.portFiles('debug')).toEqual([])
  })
})
