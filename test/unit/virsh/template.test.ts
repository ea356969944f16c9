import {chmod, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {XMLParser} from 'fast-xml-parser'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {sshForwardOf} from '../../../src/virsh/domain-xml.js'
import {packageInfo} from '../../../src/package-info.js'
import {
  backingStoreXml,
  escapeXml,
  loadTemplate,
  renderDomainXml,
  usesSshPort,
  type DomainValues,
} from '../../../src/virsh/template.js'

const values: DomainValues = {
  name: 'e195701-01',
  uuid: '0b5c2f4e-8f7a-4f0e-9b7e-0d7c6a1e2f30',
  domainType: 'qemu',
  memoryMiB: 2048,
  vcpus: 2,
  diskPath: '/gfs2/shien/users/e195701/images/01.qcow2',
  backingChain: ['/gfs2/shien/boxes/os/1.0/box.qcow2'],
  sshPort: 22007,
  listenAddress: '127.0.0.1',
  owner: {uid: 1001, gid: 1100},
  arch: 'x86_64',
}

const parse = (xml: string) => new XMLParser({ignoreAttributes: false, parseTagValue: false}).parse(xml)

describe('the normal template', () => {
  it('renders a domain with serial console, virtio qcow2 disk kept unlabelled, and the SSH forward', async () => {
    const template = await loadTemplate('normal', {admin: '/nonexistent', package: packageInfo().templatesDir})
    expect(usesSshPort(template)).toBe(true)
    const xml = renderDomainXml(template, values)
    const d = parse(xml).domain
    expect(d['@_type']).toBe('qemu')
    expect(d['@_xmlns:qemu']).toBe('http://libvirt.org/schemas/domain/qemu/1.0')
    expect([d.name, d.uuid, d.memory['#text'], d.vcpu['#text']]).toEqual(['e195701-01', values.uuid, '2048', '2'])
    expect(d.devices.serial['@_type']).toBe('pty')
    expect(d.devices.console['@_type']).toBe('pty')
    const disk = d.devices.disk
    expect(disk.driver).toMatchObject({'@_name': 'qemu', '@_type': 'qcow2'})
    expect(disk.target).toMatchObject({'@_bus': 'virtio'})
    expect(disk.source['@_file']).toBe(values.diskPath)
    expect(disk.source.seclabel).toMatchObject({'@_model': 'dac', '@_relabel': 'no'})
    expect(disk.backingStore.source['@_file']).toBe(values.backingChain[0])
    expect(sshForwardOf(xml)).toEqual({address: '127.0.0.1', port: 22007})
    expect(xml).toContain("<qemu:arg value='virtio-net-pci,netdev=shien0,bus=pci.0,addr=0x1e'/>")
    // The VM runs as its owner: a static DAC label with the owner's uid and gid.
    expect(d.seclabel).toMatchObject({'@_type': 'static', '@_model': 'dac', '@_relabel': 'yes', label: '+1001:+1100'})
  })
})

describe('rendering', () => {
  const tpl = (text: string) => ({path: '/t/test.xml', text})

  it('XML-escapes every value, so a value cannot add elements or attributes', () => {
    const hostile = `x'/><evil a="1"/>&amp;<`
    const text =
      "<domain type='{{domainType}}'><name>{{name}}</name><uuid>{{uuid}}</uuid><memory>{{memoryMiB}}</memory>" +
      "<vcpu>{{vcpus}}</vcpu><devices><disk><source file='{{diskPath}}'/>{{{backingStore}}}</disk></devices>" +
      "<x a=\"{{listenAddress}}\" b='{{sshPort}}'/></domain>"
    const xml = renderDomainXml(tpl(text), {...values, diskPath: `/p/${hostile}`, listenAddress: hostile, backingChain: [`/b/${hostile}`]})
    expect(xml).not.toContain('<evil')
    const d = parse(xml).domain
    expect(d.devices.disk.source['@_file']).toBe(`/p/${hostile}`)
    expect(d.x['@_a']).toBe(hostile)
    expect(d.devices.disk.backingStore.source['@_file']).toBe(`/b/${hostile}`)
    expect(escapeXml(`<>&'"`)).toBe('&lt;&gt;&amp;&apos;&quot;')
  })

  it('spells out the backing chain nearest first, ending in an explicit empty backingStore', () => {
    expect(backingStoreXml([])).toBe('<backingStore/>')
    const xml = backingStoreXml(['/a/mid.qcow2', '/b/base.qcow2'])
    const outer = parse(xml).backingStore
    expect(outer.source['@_file']).toBe('/a/mid.qcow2')
    expect(outer.backingStore.source['@_file']).toBe('/b/base.qcow2')
    expect(outer.backingStore.backingStore).toBe('')
  })

  it('refuses unknown placeholders, DOCTYPEs, broken XML and a template that ignores {{name}}', () => {
    const base = '<domain><name>{{name}}</name><disk>{{{backingStore}}}</disk>EXTRA</domain>'
    const render = (extra: string, t = base) => () => renderDomainXml(tpl(t.replace('EXTRA', extra)), values)
    expect(render('{{password}}')).toThrow(/unknown placeholder \{\{password\}\}/)
    expect(render('{{{rawXml}}}')).toThrow(/unknown placeholder/)
    expect(render('', '<!DOCTYPE d [<!ENTITY x "y">]>' + base)).toThrow(/DOCTYPE/)
    expect(render('<open>')).toThrow(/valid XML/)
    expect(render('', '<domain><name>fixed-01</name>{{{backingStore}}}</domain>')).toThrow(/\{\{name\}\}/)
    expect(render('', '<domain><name>{{name}}</name></domain>')).toThrow(/lacks \{\{\{backingStore\}\}\}/)
    expect(render('<p>{{sshPort}}</p>')).not.toThrow()
    // The template cannot choose whom the VM runs as.
    expect(render("<seclabel type='static' model='dac'><label>+0:+0</label></seclabel>")).toThrow(/sets a domain <seclabel>/)
    expect(render("<seclabel type='none'/>")).toThrow(/sets a domain <seclabel>/)
    expect(() => renderDomainXml(tpl(base.replace('EXTRA', '{{sshPort}}')), {...values, sshPort: undefined})).toThrow(/sshPort/)
  })
})

describe('template lookup', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shien-tpl-'))
  })
  afterEach(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it("prefers the admin's file of the same name over the package's", async () => {
    await writeFile(join(dir, 'normal.xml'), '<domain><name>{{name}}</name></domain>', {mode: 0o644})
    const t = await loadTemplate('normal', {admin: dir, package: packageInfo().templatesDir})
    expect(t.path).toBe(join(dir, 'normal.xml'))
    const fallback = await loadTemplate('normal', {admin: join(dir, 'none'), package: packageInfo().templatesDir})
    expect(fallback.path).toBe(join(packageInfo().templatesDir, 'normal.xml'))
  })

  it('refuses a template others can write, and template names that are paths', async () => {
    await writeFile(join(dir, 'normal.xml'), '<domain/>')
    await chmod(join(dir, 'normal.xml'), 0o666)
    await expect(loadTemplate('normal', {admin: dir, package: dir})).rejects.toThrow(/writable only by root/)
    await expect(loadTemplate('../normal', {admin: dir, package: dir})).rejects.toThrow(/not a valid template name/)
    await expect(loadTemplate('debug', {admin: dir, package: dir})).rejects.toMatchObject({code: 'TEMPLATE_INVALID'})
  })
})
