import {stat} from 'node:fs/promises'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {ExitCode} from '../../../src/errors.js'
import {gdbStubOf} from '../../../src/virsh/gdb-stub.js'
import {Harness} from './harness.js'

describe('ie-virsh debug (fake libvirt, real socket folders)', () => {
  const h = new Harness()
  const kernelDebug = {limits: {default: {vms: 4, vcpus: 1, memoryMiB: 256}, groups: {students: {debug: true}}}}
  beforeEach(async () => {
    await h.setUp()
    await h.writeConfig(kernelDebug)
  })
  afterEach(() => h.tearDown())

  it("puts the stub on a socket in the owner's own 0700 folder, runs the VM as the owner, and starts it paused with --stop", async () => {
    await h.run(['define', '01'])
    expect(await h.run(['debug', '01', '--stop', '--json'])).toBe(0)
    const socket = join(h.root, 'run', 'debug', 'e195701', '01.sock')
    expect(h.json()).toEqual({name: 'e195701-01', slot: '01', state: 'paused', debugSocket: socket, stopped: true, gdb: `gdb -ex 'target remote ${socket}'`})
    const folder = await stat(join(h.root, 'run', 'debug', 'e195701'))
    expect([folder.uid, folder.gid, folder.mode & 0o777]).toEqual([1001, 1001, 0o700])
    const parent = await stat(join(h.root, 'run', 'debug'))
    expect([parent.uid, parent.mode & 0o777]).toEqual([0, 0o755])
    const xml = h.hv.domains.get('e195701-01')!.xml
    expect(gdbStubOf(xml)).toEqual({socket})
    expect(xml).toContain('<label>+1001:+1001</label>')
    expect(h.admitted).toEqual([1001])
    expect(h.hv.calls.at(-1)).toBe('start e195701-01 --paused')
    expect(await h.run(['list', '--json'])).toBe(0)
    expect(h.json().domains[0]).toMatchObject({slot: '01', state: 'paused', debugSocket: socket})
  })

  it('is off unless the config grants it, and refuses a running VM', async () => {
    await h.writeConfig({})
    await h.run(['define', '01'])
    expect(await h.run(['debug', '01', '--json'])).toBe(ExitCode.refused)
    expect(h.json().error.code).toBe('DEBUG_NOT_ALLOWED')
    expect(h.hv.domains.get('e195701-01')!.state).toBe('shut off')
    await h.writeConfig(kernelDebug)
    await h.run(['start', '01'])
    expect(await h.run(['debug', '01', '--json'])).toBe(ExitCode.refused)
    expect(h.json().error).toMatchObject({code: 'DOMAIN_RUNNING', suggestions: ['Stop it first: sudo ie-virsh destroy 01']})
  })

  it('takes the stub out again when libvirt cannot start the VM', async () => {
    await h.run(['define', '01'])
    h.hv.failStart = true
    expect(await h.run(['debug', '01'])).toBe(ExitCode.remote)
    expect(gdbStubOf(h.hv.domains.get('e195701-01')!.xml)).toBeUndefined()
  })

  it('drops a stale stub at a plain start', async () => {
    await h.run(['define', '01'])
    await h.run(['debug', '01'])
    expect(await h.run(['destroy', '01', '--json'])).toBe(0)
    await h.run(['start', '01'])
    expect(gdbStubOf(h.hv.domains.get('e195701-01')!.xml)).toBeUndefined()
  })
})
