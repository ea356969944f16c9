import {describe, expect, it} from 'vitest'

import {declaredIn, declaredPlatform, recordedPlatform} from '../../../src/blade/slot-files.js'
import {imagePlatform} from '../../../src/virsh/image-platform.js'

const arm64 = {declaredArchitecture: {architecture: 'arm64', source: 'metadata.json ("architecture": "arm64")'}}

describe('the platform a slot\'s record gives ie-virsh', () => {
  it('is the machine of the guest\'s init, in libvirt\'s names, and UEFI for an Arm machine', () => {
    expect(recordedPlatform('arm64', arm64)).toEqual({architecture: 'aarch64', firmware: 'efi', ...arm64})
    expect(recordedPlatform('amd64', {firmware: 'efi'})).toEqual({architecture: 'x86_64', firmware: 'efi'})
    // A box that declares nothing (a libvirt box) is what its disk holds.
    expect(recordedPlatform('arm64', {})).toEqual({architecture: 'aarch64', firmware: 'efi'})
  })

  it('is the declaration when the init could not be read, and x86_64 BIOS when nothing says', () => {
    expect(recordedPlatform(undefined, arm64)).toMatchObject({architecture: 'aarch64', firmware: 'efi'})
    expect(recordedPlatform(undefined, {})).toEqual({architecture: 'x86_64', firmware: 'bios'})
    expect(recordedPlatform('i386', {})).toEqual({architecture: 'x86_64', firmware: 'bios'})
  })

  it('goes from convert\'s staged record through harden to what ie-virsh reads', () => {
    const layout = {architecture: 'arm64' as const, architectureClaims: [{architecture: 'arm64' as const, source: 'box.ovf (<Platform architecture="ARM">)'}], firmware: 'efi' as const}
    const staged = JSON.parse(JSON.stringify({slot: '01', ...declaredPlatform(layout)})) as Record<string, unknown>
    const record = {slot: '01', ...recordedPlatform('arm64', declaredIn(staged))}
    expect(imagePlatform(JSON.stringify(record), 'images/01.json')).toEqual({arch: 'aarch64', firmware: 'efi'})
    // A machine no template exists for is kept as named, and refused by ie-virsh, not booted as x86_64.
    expect(() => imagePlatform(JSON.stringify(recordedPlatform('ppc64le', {})), 'images/01.json')).toThrow(expect.objectContaining({code: 'BLADE_ARCH_UNSUPPORTED'}))
  })
})
