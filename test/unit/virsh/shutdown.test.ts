import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {ExitCode} from '../../../src/errors.js'
import {parseInvocation} from '../../../src/virsh/cli.js'
import {Harness} from './harness.js'

describe('ie-virsh shutdown (fake libvirt)', () => {
  const h = new Harness()
  const run = (argv: string[], uid: string | number = 1001) => h.run(argv, uid)
  beforeEach(() => h.setUp())
  afterEach(() => h.tearDown())

  it('parses the slot, --timeout (60 s by default) and --account like destroy', () => {
    expect(parseInvocation(['shutdown', '01'])).toEqual({command: 'shutdown', slot: '01', timeoutSeconds: 60, json: false})
    expect(parseInvocation(['shutdown', '02', '--timeout', '5', '--json'])).toEqual({command: 'shutdown', slot: '02', timeoutSeconds: 5, json: true})
    expect(parseInvocation(['shutdown', '01', '--account', 'e195702'])).toEqual({command: 'shutdown', slot: '01', timeoutSeconds: 60, json: false, account: 'e195702'})
  })

  it.each([
    [['shutdown']],
    [['shutdown', '01', '02']],
    [['shutdown', '01', '--timeout', '0']],
    [['shutdown', '01', '--timeout', '601']],
    [['shutdown', '01', '--timeout', '1.5']],
    [['shutdown', '01', '--timeout', '-1']],
    [['shutdown', '01', '--timeout', '10s']],
    [['destroy', '01', '--timeout', '5']],
  ])('refuses %j as a usage error (exit 2)', (argv) => {
    expect(() => parseInvocation(argv)).toThrow(expect.objectContaining({code: 'USAGE', exitCode: ExitCode.usage}))
  })

  it('asks the guest to shut down and reports that it did, without destroying it', async () => {
    await run(['define', '01'])
    await run(['start', '01'])
    expect(await run(['shutdown', '01', '--json'])).toBe(0)
    expect(h.json()).toMatchObject({name: 'e195701-01', slot: '01', state: 'shut off', outcome: 'shutdown', timeoutSeconds: 60})
    expect(h.hv.calls.filter((c) => !c.startsWith('define') && !c.startsWith('start'))).toEqual(['shutdown e195701-01'])
  })

  it('destroys a guest still running after the timeout, and says so', async () => {
    await run(['define', '01'])
    await run(['start', '01'])
    h.hv.obeysShutdown = false
    const started = Date.now()
    expect(await run(['shutdown', '01', '--timeout', '1'])).toBe(0)
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000)
    expect(h.out.join('')).toContain('e195701-01 did not shut down within 1 s, so it was powered off (destroyed).')
    expect(h.hv.calls.slice(-2)).toEqual(['shutdown e195701-01', 'destroy e195701-01'])
    expect(h.hv.domains.get('e195701-01')!.state).toBe('shut off')
  })

  it('does nothing to a VM that is not running', async () => {
    await run(['define', '01'])
    expect(await run(['shutdown', '01', '--json'])).toBe(0)
    expect(h.json()).toMatchObject({outcome: 'not-running', state: 'shut off', waitedMs: 0})
    expect(h.hv.calls).toEqual(['define'])
  })

  it("never reaches another account's domain, and an admin's --account is checked like destroy's", async () => {
    await run(['define', '01'], 1002)
    await run(['start', '01'], 1002)
    expect(await run(['shutdown', '01', '--json'])).toBe(ExitCode.refused)
    expect(h.json().error.code).toBe('NOT_DEFINED')
    expect(await run(['shutdown', '01', '--account', 'k198584', '--json'], 1001)).toBe(ExitCode.refused)
    expect(h.hv.domains.get('k198584-01')!.state).toBe('running')
    expect(await run(['shutdown', '01', '--account', 'k198584', '--json'], 1003)).toBe(0)
    expect(h.json()).toMatchObject({name: 'k198584-01', outcome: 'shutdown'})
  })

  it('refuses a malformed slot or one beyond the limit before touching libvirt', async () => {
    expect(await run(['shutdown', '../x', '--json'])).toBe(ExitCode.usage)
    expect(h.json().error.code).toBe('BAD_SLOT')
    expect(await run(['shutdown', '05', '--json'])).toBe(ExitCode.refused)
    expect(h.json().error.code).toBe('SLOT_LIMIT')
    expect(h.hv.calls).toEqual([])
  })
})
