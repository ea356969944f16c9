import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {ExitCode} from '../../../src/errors.js'
import {Harness} from './harness.js'

describe('roles, limits and --account (fake directory)', () => {
  const h = new Harness()
  beforeEach(() =>
    h.setUp({
      limits: {default: {vms: 2, vcpus: 1, memoryMiB: 256, debug: false}, groups: {kernel: {vms: 4, debug: true, templates: ['kernel']}}},
    }),
  )
  afterEach(() => h.tearDown())

  it("gives each account the limits of its groups, and says which role it has", async () => {
    expect(await h.run(['list', '--json'], 1002)).toBe(0)
    expect(h.json()).toMatchObject({account: 'k198584', role: 'student', limits: {vms: 4, debug: true, templates: ['kernel', 'normal']}})
    expect(await h.run(['define', '03', '--json'], 1001)).toBe(ExitCode.refused)
    expect(h.json().error).toMatchObject({code: 'SLOT_LIMIT', message: expect.stringContaining('limit of 2')})
  })

  it('refuses an account without a role, whatever it asks', async () => {
    for (const argv of [['list'], ['define', '01'], ['templates']]) {
      expect(await h.run([...argv, '--json'], 1004)).toBe(ExitCode.refused)
      expect(h.json().error).toMatchObject({code: 'NO_ROLE', message: 'nobody1 has no role on the blades (not an admin, instructor or student in the directory).'})
    }
    expect(h.hv.calls).toEqual([])
  })

  it('fails closed when the directory cannot answer', async () => {
    h.directory.down = true
    expect(await h.run(['start', '01', '--json'])).toBe(ExitCode.remote)
    expect(h.json().error.code).toBe('DIRECTORY_UNAVAILABLE')
    expect(h.hv.calls).toEqual([])
  })

  it('refuses an account the directory knows under another uid', async () => {
    h.directory.accounts.e195701.uid = 4242
    expect(await h.run(['list', '--json'])).toBe(ExitCode.refused)
    expect(h.json().error.code).toBe('ACCOUNT_MISMATCH')
  })

  it("lets an admin act on another account's domains, with that account's limits", async () => {
    await h.run(['define', '01'], 1002)
    expect(await h.run(['list', '--account', 'k198584', '--json'], 1003)).toBe(0)
    expect(h.json()).toMatchObject({account: 'k198584', role: 'admin', limits: {vms: 4}, domains: [{name: 'k198584-01'}]})
    expect(await h.run(['start', '01', '--account', 'k198584', '--json'], 1003)).toBe(0)
    expect(h.hv.domains.get('k198584-01')!.state).toBe('running')
    expect(await h.run(['undefine', '01', '--account', 'k198584', '--json'], 1003)).toBe(ExitCode.refused)
    expect(h.json().error.suggestions).toEqual(['Stop it first: sudo ie-virsh destroy 01 --account k198584'])
  })

  it('refuses --account for anyone but admins, and names an unknown account', async () => {
    await h.run(['define', '01'], 1002)
    expect(await h.run(['destroy', '01', '--account', 'k198584', '--json'], 1001)).toBe(ExitCode.refused)
    expect(h.json().error).toMatchObject({code: 'NOT_ADMIN', message: "Only admins may act on another account's VMs; e195701 is a student."})
    expect(await h.run(['list', '--account', 'ghost', '--json'], 1003)).toBe(ExitCode.refused)
    expect(h.json().error.code).toBe('NO_SUCH_ACCOUNT')
    expect(await h.run(['list', '--account', '../etc', '--json'], 1003)).toBe(ExitCode.usage)
    expect(h.json().error.code).toBe('BAD_ACCOUNT')
    // --account naming yourself is just you.
    expect(await h.run(['list', '--account', 'e195701', '--json'], 1001)).toBe(0)
  })
})
