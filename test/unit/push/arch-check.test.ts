import {describe, expect, it} from 'vitest'

import {ExitCode} from '../../../src/errors.js'
import {checkBladeArch, EMULATED_SLOWDOWN} from '../../../src/push/arch-check.js'

const x86Blade = {native: ['x86_64' as const], emulated: ['aarch64' as const]}

describe('the push\'s check of the box\'s architecture against the blade, before the upload', () => {
  it('runs an amd64 box natively on an x86_64 blade, and says nothing', () => {
    expect(checkBladeArch('amd64', x86Blade, 'blade1')).toEqual({arch: 'x86_64', mode: 'native'})
    // An i386 system runs on an x86_64 machine.
    expect(checkBladeArch('i386', x86Blade, 'blade1')).toEqual({arch: 'x86_64', mode: 'native'})
  })

  it('says when an arm64 box from an Apple Silicon Mac will run emulated, and how much slower', () => {
    const verdict = checkBladeArch('arm64', x86Blade, 'blade1')
    expect(verdict).toMatchObject({arch: 'aarch64', mode: 'emulated'})
    expect(verdict.mode === 'emulated' && verdict.note).toBe(`blade1 runs aarch64 VMs emulated (TCG), not natively: expect this VM to be ${EMULATED_SLOWDOWN}`)
    expect(EMULATED_SLOWDOWN).toMatch(/5 to 10 times slower/)
  })

  it('refuses an architecture the blade does not run, exit 6, naming what it runs', () => {
    let error: unknown
    try {
      checkBladeArch('arm64', {native: ['x86_64'], emulated: []}, 'blade1')
    } catch (e) {
      error = e
    }
    expect(error).toMatchObject({code: 'BLADE_ARCH_UNSUPPORTED', exitCode: ExitCode.refused})
    expect((error as Error).message).toBe('The box is arm64 (aarch64), and blade1 runs x86_64 VMs. Nothing was uploaded.')
  })

  it('refuses an architecture no blade has a template for (32-bit arm, ppc64le)', () => {
    for (const arch of ['arm', 'ppc64le']) {
      expect(() => checkBladeArch(arch, x86Blade, 'blade1')).toThrow(expect.objectContaining({code: 'BLADE_ARCH_UNSUPPORTED'}))
    }
  })

  it('leaves a box that declares nothing, or an older blade that does not say, to ie-virsh at define', () => {
    expect(checkBladeArch(undefined, x86Blade, 'blade1')).toEqual({arch: undefined, mode: 'unknown'})
    expect(checkBladeArch('arm64', undefined, 'blade1')).toEqual({arch: undefined, mode: 'unknown'})
  })
})
