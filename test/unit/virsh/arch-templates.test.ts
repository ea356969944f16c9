import {execFile} from 'node:child_process'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {XMLParser} from 'fast-xml-parser'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {packageInfo} from '../../../src/package-info.js'
import {sshForwardOf} from '../../../src/virsh/domain-xml.js'
import {loaderOf, nvramOf, varsTemplateFor} from '../../../src/virsh/firmware.js'
import {loadTemplate, renderDomainXml, templateVariant, usesNvram, type DomainValues} from '../../../src/virsh/template.js'

const run = promisify(execFile)
const dirs = {admin: '/nonexistent', package: packageInfo().templatesDir}
const base: DomainValues = {
  name: 'e195701-01',
  uuid: '0b5c2f4e-8f7a-4f0e-9b7e-0d7c6a1e2f30',
  domainType: 'qemu',
  memoryMiB: 1024,
  vcpus: 2,
  diskPath: '/gfs2/shien/users/e195701/images/01.qcow2',
  backingChain: [],
  sshPort: 22007,
  listenAddress: '127.0.0.1',
  owner: {uid: 1001, gid: 1100},
  arch: 'x86_64',
  nvramPath: '/gfs2/shien/users/e195701/images/01.vars.fd',
}
const parse = (xml: string) => new XMLParser({ignoreAttributes: false, parseTagValue: false}).parse(xml).domain

describe('a template for each architecture and firmware, against libvirt\'s domain schema', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shien-arch-xml-'))
  })
  afterAll(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  /** virt-xml-validate (libvirt-clients) against domain.rng: what libvirt would accept. */
  const validate = async (xml: string, name: string) => {
    const file = join(dir, `${name}.xml`)
    await writeFile(file, xml)
    const r = await run('virt-xml-validate', [file, 'domain'])
    expect(r.stdout + r.stderr).toContain(`${file} validates`)
  }

  it.each([
    ['x86_64 BIOS', {arch: 'x86_64', firmware: 'bios'}, undefined],
    ['x86_64 UEFI', {arch: 'x86_64', firmware: 'efi'}, 'uefi'],
    ['aarch64 UEFI', {arch: 'aarch64', firmware: 'efi'}, 'aarch64'],
  ] as const)('%s renders to a domain libvirt validates, under TCG and under KVM', async (label, platform, variant) => {
    expect(templateVariant(platform)).toBe(variant)
    const template = await loadTemplate('normal', dirs, variant)
    for (const domainType of ['qemu', 'kvm'] as const) {
      const xml = renderDomainXml(template, {...base, arch: platform.arch, domainType})
      await validate(xml, `${label.replace(/\W/g, '-')}-${domainType}`)
      expect(sshForwardOf(xml)).toEqual({address: '127.0.0.1', port: 22007})
    }
  })

  it('aarch64: machine virt, AAVMF with the store in the images folder left unlabelled, virtio disk, serial console, Cortex-A57 under TCG', async () => {
    const template = await loadTemplate('normal', dirs, 'aarch64')
    expect(usesNvram(template)).toBe(true)
    const xml = renderDomainXml(template, {...base, arch: 'aarch64'})
    const d = parse(xml)
    expect(d.os.type).toMatchObject({'@_arch': 'aarch64', '@_machine': 'virt', '#text': 'hvm'})
    expect(d.os.loader).toMatchObject({'@_readonly': 'yes', '@_type': 'pflash', '#text': '/usr/share/AAVMF/AAVMF_CODE.fd'})
    // No template for libvirt to copy from: the store is made by ie-virsh, as the owner.
    expect(d.os.nvram['@_template']).toBeUndefined()
    expect(d.os.nvram.source).toMatchObject({'@_file': base.nvramPath, seclabel: {'@_model': 'dac', '@_relabel': 'no'}})
    expect(nvramOf(xml)).toBe(base.nvramPath)
    expect(loaderOf(xml)).toBe('/usr/share/AAVMF/AAVMF_CODE.fd')
    expect(d.cpu.model['#text']).toBe('cortex-a57')
    expect(d.devices.disk.target['@_bus']).toBe('virtio')
    expect(d.devices.serial['@_type']).toBe('pty')
    expect(xml).toContain("<qemu:arg value='virtio-net-pci,netdev=shien0,bus=pcie.0,addr=0x1e'/>")
    expect(d.seclabel).toMatchObject({'@_type': 'static', label: '+1001:+1100'})
    expect(parse(renderDomainXml(template, {...base, arch: 'aarch64', domainType: 'kvm'})).cpu['@_mode']).toBe('host-passthrough')
  })

  it('x86_64 UEFI: OVMF 4M on the pc machine, its own store, the NIC where normal.xml has it', async () => {
    const xml = renderDomainXml(await loadTemplate('normal', dirs, 'uefi'), base)
    const d = parse(xml)
    expect(d.os.type).toMatchObject({'@_arch': 'x86_64', '@_machine': 'pc'})
    expect(d.os.loader['#text']).toBe('/usr/share/OVMF/OVMF_CODE_4M.fd')
    expect(nvramOf(xml)).toBe(base.nvramPath)
    expect(xml).toContain('bus=pci.0,addr=0x1e')
  })

  it('each loader has its variable store template in the firmware descriptors Debian\'s packages ship', async () => {
    expect(await varsTemplateFor('/usr/share/AAVMF/AAVMF_CODE.fd')).toBe('/usr/share/AAVMF/AAVMF_VARS.fd')
    expect(await varsTemplateFor('/usr/share/OVMF/OVMF_CODE_4M.fd')).toBe('/usr/share/OVMF/OVMF_VARS_4M.fd')
    await expect(varsTemplateFor('/tmp/evil_CODE.fd')).rejects.toMatchObject({code: 'FIRMWARE_MISSING'})
  })

  it('refuses a template whose machine is not the image\'s architecture', async () => {
    const template = await loadTemplate('normal', dirs)
    expect(() => renderDomainXml(template, {...base, arch: 'aarch64'})).toThrow(expect.objectContaining({code: 'TEMPLATE_INVALID'}))
  })
})
