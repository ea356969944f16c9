import {chmod, mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {ExitCode} from '../../../src/errors.js'
import {Harness} from './harness.js'

describe('ie-virsh dumpxml, console and templates (fake libvirt)', () => {
  const h = new Harness()
  beforeEach(() => h.setUp())
  afterEach(() => h.tearDown())

  it("prints only the caller's domain XML, without passwords", async () => {
    await h.run(['define', '01'])
    const entry = h.hv.domains.get('e195701-01')!
    entry.xml = entry.xml.replace('<devices>', "<devices><graphics type='vnc' passwd='secret'/>")
    expect(await h.run(['dumpxml', '01'])).toBe(0)
    expect(h.out.join('')).toContain('<name>e195701-01</name>')
    expect(h.out.join('')).not.toContain('secret')
    expect(await h.run(['dumpxml', '01', '--json'], 1002)).toBe(ExitCode.refused)
    expect(h.json().error.code).toBe('NOT_DEFINED')
  })

  it('attaches the console to a running VM only, and only on a terminal', async () => {
    await h.run(['define', '01'])
    expect(await h.run(['console', '01', '--json'])).toBe(ExitCode.refused)
    expect(h.json().error).toMatchObject({code: 'NOT_RUNNING', suggestions: ['Start it first: sudo ie-virsh start 01']})
    await h.run(['start', '01'])
    h.isTty = false
    expect(await h.run(['console', '01', '--json'])).toBe(ExitCode.usage)
    expect(h.json().error.code).toBe('NOT_A_TERMINAL')
    h.isTty = true
    expect(await h.run(['console', '01'])).toBe(0)
    expect(h.hv.calls.at(-1)).toBe('console e195701-01')
    expect(h.out).toEqual([])
  })

  it("lists the templates the caller's groups allow that exist, admin's first", async () => {
    const admin = join(h.root, 'admin-templates')
    await mkdir(admin)
    await writeFile(join(admin, 'kernel.xml'), '<!--\n  Kernel course VM\n-->\n<domain/>')
    await chmod(join(admin, 'kernel.xml'), 0o644)
    await h.writeConfig({templatesDir: admin, limits: {default: {vms: 4, vcpus: 1, memoryMiB: 256}, groups: {kernel: {templates: ['kernel', 'missing']}}}})
    expect(await h.run(['templates', '--json'], 1002)).toBe(0)
    expect(h.json()).toEqual({
      account: 'k198584',
      templates: [
        {name: 'kernel', path: join(admin, 'kernel.xml'), summary: 'Kernel course VM', sshForward: false, default: false},
        {name: 'normal', path: expect.stringMatching(/templates\/normal\.xml$/), summary: expect.stringContaining('"normal" domain template'), sshForward: true, default: true},
      ],
    })
    expect(await h.run(['templates'], 1001)).toBe(0)
    expect(h.out.join('')).toMatch(/define SLOT --template NAME\n {2}normal {2}\(default\) /)
  })

  it('defines from an allowed template and refuses any other name', async () => {
    expect(await h.run(['define', '01', '--template', 'kernel', '--json'])).toBe(ExitCode.refused)
    expect(h.json().error).toMatchObject({code: 'TEMPLATE_NOT_ALLOWED', suggestions: ['See the templates you may use: sudo ie-virsh templates']})
    expect(await h.run(['define', '01', '--template', '../../etc/passwd', '--json'])).toBe(ExitCode.refused)
    expect(h.hv.calls).toEqual([])
    expect(await h.run(['define', '01', '--template', 'normal', '--json'])).toBe(0)
  })
})
