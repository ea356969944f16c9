import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {ExitCode} from '../../../src/errors.js'
import {Harness} from './harness.js'

const STORE = (root: string, slot: string) => `${root}/users/e195701/images/${slot}.vars.fd`

describe('ie-virsh define and start for each architecture (fake libvirt, the blade\'s arch rules)', () => {
  const h = new Harness()
  beforeEach(() => h.setUp())
  afterEach(() => h.tearDown())

  it('defines an aarch64 image as a virt machine with UEFI, emulated, with a fresh store made as the owner and the owner\'s limits', async () => {
    h.images.platforms['01'] = {arch: 'aarch64', firmware: 'efi'}
    expect(await h.run(['define', '01', '--json'])).toBe(0)
    expect(h.json()).toMatchObject({arch: 'aarch64', firmware: 'efi', emulated: true, domainType: 'qemu', nvram: STORE(h.root, '01'), sshPort: 22000})
    const xml = h.hv.domains.get('e195701-01')!.xml
    expect(xml).toMatch(/<domain type='qemu'/)
    expect(xml).toContain("<type arch='aarch64' machine='virt'>hvm</type>")
    expect(xml).toContain(`<source file='${STORE(h.root, '01')}'>`)
    // Limits apply as to any VM: the owner's memory and vCPUs.
    expect(xml).toContain("<memory unit='MiB'>256</memory>")
    expect(xml).toContain("<vcpu placement='static'>1</vcpu>")
    expect(h.nvram.calls).toEqual([`reset ${STORE(h.root, '01')} /usr/share/AAVMF/AAVMF_VARS.fd`])
    // Before a start the store is checked again (made again if missing), as the owner.
    expect(await h.run(['start', '01', '--json'])).toBe(0)
    expect(h.nvram.calls.at(-1)).toBe(`ensure ${STORE(h.root, '01')} /usr/share/AAVMF/AAVMF_VARS.fd`)
  })

  it('defines an EFI x86_64 image with OVMF; native, it takes the domain type the KVM probe gives (TCG in this harness)', async () => {
    h.host = {machine: 'x86_64', kvm: true, emulator: () => true}
    h.images.platforms['02'] = {arch: 'x86_64', firmware: 'efi'}
    expect(await h.run(['define', '02', '--json'])).toBe(0)
    expect(h.json()).toMatchObject({arch: 'x86_64', firmware: 'efi', domainType: 'qemu'})
    const xml = h.hv.domains.get('e195701-02')!.xml
    expect(xml).toContain('/usr/share/OVMF/OVMF_CODE_4M.fd')
    expect(h.nvram.calls).toEqual([`reset ${STORE(h.root, '02')} /usr/share/OVMF/OVMF_VARS_4M.fd`])
  })

  it('keeps a BIOS x86_64 image as it always was: no loader, no store', async () => {
    expect(await h.run(['define', '03', '--json'])).toBe(0)
    expect(h.json()).toMatchObject({arch: 'x86_64', firmware: 'bios'})
    expect(h.json().nvram).toBeUndefined()
    expect(h.hv.domains.get('e195701-03')!.xml).not.toContain('<loader')
    expect(h.nvram.calls).toEqual([])
  })

  it('refuses an architecture the blade config does not allow, with nothing written: no domain, no port, no store', async () => {
    await h.writeConfig({arch: {native: [], emulated: ['x86_64']}})
    h.images.platforms['01'] = {arch: 'aarch64', firmware: 'efi'}
    expect(await h.run(['define', '01', '--json'])).toBe(ExitCode.refused)
    expect(h.json().error).toMatchObject({code: 'BLADE_ARCH_UNSUPPORTED', message: 'The VM is aarch64, and blade1 runs x86_64 VMs (its blade configuration\'s "arch").'})
    expect(h.hv.calls).toEqual([])
    expect(await h.portFiles()).toEqual([])
    expect(h.nvram.calls).toEqual([])
  })

  it('refuses x86_64 too on a blade configured for aarch64 alone (the root side trusts no laptop)', async () => {
    await h.writeConfig({arch: {native: ['aarch64'], emulated: []}})
    expect(await h.run(['define', '01', '--json'])).toBe(ExitCode.refused)
    expect(h.json().error.code).toBe('BLADE_ARCH_UNSUPPORTED')
    expect(h.hv.calls).toEqual([])
  })

  it('does not start a VM of an architecture the blade stopped running since its define', async () => {
    h.images.platforms['01'] = {arch: 'aarch64', firmware: 'efi'}
    expect(await h.run(['define', '01'])).toBe(0)
    await h.writeConfig({arch: {native: [], emulated: ['x86_64']}})
    expect(await h.run(['start', '01', '--json'])).toBe(ExitCode.refused)
    expect(h.json().error.code).toBe('BLADE_ARCH_UNSUPPORTED')
    expect(h.hv.calls.filter((c) => c.startsWith('start'))).toEqual([])
  })
})
