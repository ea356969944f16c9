import {describe, expect, it} from 'vitest'

import {ExitCode} from '../../../src/errors.js'
import {DEFAULT_BLADE_CONFIG, type BladeConfig} from '../../../src/config/blade-config.js'
import {limitsFor, parseSlot, slotOfDomain} from '../../../src/virsh/limits.js'

const limits = {...DEFAULT_BLADE_CONFIG.limits.default, vms: 4}

describe('slots and limits', () => {
  it('gives an account in no mapped group the defaults, with the default template allowed', () => {
    expect(limitsFor([], DEFAULT_BLADE_CONFIG)).toEqual({...DEFAULT_BLADE_CONFIG.limits.default, templates: ['normal']})
    expect(limitsFor(['students', 'unmapped'], DEFAULT_BLADE_CONFIG).vms).toBe(4)
  })

  it("takes the most generous value of each field across the account's groups, over the defaults", () => {
    const config: BladeConfig = {
      ...DEFAULT_BLADE_CONFIG,
      limits: {
        default: {vms: 2, vcpus: 1, memoryMiB: 512, debug: false, templates: []},
        groups: {
          kernel: {debug: true, memoryMiB: 1024, templates: ['kernel']},
          staff: {vms: 8, vcpus: 4, memoryMiB: 256, templates: ['big', 'kernel']},
          tiny: {vms: 1, vcpus: 1},
        },
      },
    }
    expect(limitsFor(['tiny', 'kernel', 'staff'], config)).toEqual({
      vms: 8,
      vcpus: 4,
      memoryMiB: 1024,
      debug: true,
      templates: ['big', 'kernel', 'normal'],
    })
    // A group with lower numbers never lowers the defaults.
    expect(limitsFor(['tiny'], config)).toEqual({vms: 2, vcpus: 1, memoryMiB: 512, debug: false, templates: ['normal']})
  })

  it('accepts slots 01 to the limit, and pads a single digit like the thesis wrote it', () => {
    expect(['01', '02', '03', '04'].map((s) => parseSlot(s, limits))).toEqual(['01', '02', '03', '04'])
    expect(parseSlot('3', limits)).toBe('03')
  })

  it('refuses a slot beyond the limit as a rule (exit 6), naming the limit', () => {
    expect(() => parseSlot('05', limits)).toThrow(
      expect.objectContaining({code: 'SLOT_LIMIT', exitCode: ExitCode.refused, message: expect.stringContaining('01 to 04')}),
    )
    expect(() => parseSlot('99', {...limits, vms: 98})).toThrow(expect.objectContaining({code: 'SLOT_LIMIT'}))
  })

  it.each(['../x', '00', '0', '001', '1a', '-1', '01/../02', '', ' 01', '０１'])('refuses slot %j as malformed (exit 2)', (raw) => {
    expect(() => parseSlot(raw, limits)).toThrow(expect.objectContaining({code: 'BAD_SLOT', exitCode: ExitCode.usage}))
  })

  it('sees only <account>-NN domains: prefix and slot pattern both match', () => {
    expect(slotOfDomain('e19', 'e19-01')).toBe('01')
    expect(slotOfDomain('e19', 'e19-12')).toBe('12')
    expect(slotOfDomain('e19', 'e195701-01')).toBeUndefined()
    expect(slotOfDomain('e19', 'e19-5701-01')).toBeUndefined()
    expect(slotOfDomain('e19', 'e19-01x')).toBeUndefined()
    expect(slotOfDomain('e19', 'e19-00')).toBeUndefined()
    expect(slotOfDomain('e19', 'xe19-01')).toBeUndefined()
    expect(slotOfDomain('shien', 'shien-vt1-01')).toBeUndefined()
  })
})
