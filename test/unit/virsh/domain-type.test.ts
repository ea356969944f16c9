import {describe, expect, it} from 'vitest'

import {acceleratorWorks, resolveDomainType} from '../../../src/virsh/domain-type.js'

const signal = new AbortController().signal

describe('domain type', () => {
  it('uses the configured type as is, without probing', async () => {
    const probe = async () => {
      throw new Error('must not probe')
    }
    expect(await resolveDomainType('qemu', {signal}, probe)).toBe('qemu')
    expect(await resolveDomainType('kvm', {signal}, probe)).toBe('kvm')
  })

  it('turns auto into kvm only when the probe succeeds', async () => {
    expect(await resolveDomainType('auto', {signal}, async () => true)).toBe('kvm')
    expect(await resolveDomainType('auto', {signal}, async () => false)).toBe('qemu')
  })

  it('boots the probe sector for real and sees it exit (TCG here)', async () => {
    expect(await acceleratorWorks('tcg', {signal})).toBe(true)
  })
})
