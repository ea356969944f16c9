import {describe, expect, it} from 'vitest'

import {archMode, archSettings, type HostFacts} from '../../../src/config/blade-arch.js'

const host = (o: Partial<HostFacts> = {}): HostFacts => ({machine: 'x86_64', kvm: true, emulator: () => true, ...o})

describe('the blade config key arch', () => {
  it('defaults to the host architecture under KVM and every installed emulator for the rest', () => {
    expect(archSettings({domainType: 'auto'}, host())).toEqual({native: ['x86_64'], emulated: ['aarch64']})
    expect(archSettings({domainType: 'kvm'}, host({machine: 'aarch64'}))).toEqual({native: ['aarch64'], emulated: ['x86_64']})
  })

  it('runs everything emulated by default without /dev/kvm, or when the config forces TCG', () => {
    expect(archSettings({domainType: 'auto'}, host({kvm: false}))).toEqual({native: [], emulated: ['x86_64', 'aarch64']})
    expect(archSettings({domainType: 'qemu'}, host())).toEqual({native: [], emulated: ['x86_64', 'aarch64']})
  })

  it('offers no emulated architecture whose qemu-system is not installed', () => {
    expect(archSettings({domainType: 'auto'}, host({emulator: (a) => a === 'x86_64'}))).toEqual({native: ['x86_64'], emulated: []})
  })

  it('takes the lists the admin wrote, each one alone, and never lists an architecture twice', () => {
    expect(archSettings({domainType: 'auto', arch: {native: ['x86_64'], emulated: []}}, host())).toEqual({native: ['x86_64'], emulated: []})
    expect(archSettings({domainType: 'auto', arch: {emulated: ['aarch64', 'x86_64']}}, host())).toEqual({native: ['x86_64'], emulated: ['aarch64']})
    expect(archSettings({domainType: 'auto', arch: {native: []}}, host({kvm: true}))).toEqual({native: [], emulated: ['x86_64', 'aarch64']})
  })

  it('refuses a list with a name that is not a guest architecture (Vagrant spells it arm64)', () => {
    expect(() => archSettings({domainType: 'auto', arch: {emulated: ['arm64' as never]}}, host())).toThrow(
      expect.objectContaining({code: 'CONFIG_INVALID', message: expect.stringContaining('arch.emulated')}),
    )
    expect(() => archSettings({domainType: 'auto', arch: {native: 'x86_64' as never}}, host())).toThrow(expect.objectContaining({code: 'CONFIG_INVALID'}))
  })

  it('tells native, emulated and refused apart', () => {
    const settings = {native: ['x86_64' as const], emulated: []}
    expect(archMode(settings, 'x86_64')).toBe('native')
    expect(archMode({native: [], emulated: ['aarch64']}, 'aarch64')).toBe('emulated')
    expect(archMode(settings, 'aarch64')).toBeUndefined()
  })
})
