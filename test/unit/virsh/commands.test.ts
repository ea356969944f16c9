import {chmod, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {ExitCode, badInput} from '../../../src/errors.js'
import {type FakeHypervisor, type FakeImages, Harness} from './harness.js'

describe('ie-virsh commands (fake libvirt and image checks)', () => {
  const h = new Harness()
  let hv: FakeHypervisor
  let images: FakeImages
  let root: string
  const run = (argv: string[], uid: string | number = 1001) => h.run(argv, uid)
  const json = () => h.json()
  const portFiles = () => h.portFiles()
  const out = {join: (sep: string) => h.out.join(sep)}
  const err = {join: (sep: string) => h.err.join(sep)}

  beforeEach(async () => {
    await h.setUp()
    hv = h.hv
    images = h.images
    root = h.root
  })
  afterEach(() => h.tearDown())

  it('defines <account>-SLOT from the template with the limits and a port from the pool', async () => {
    expect(await run(['define', '01', '--json'])).toBe(0)
    expect(json()).toMatchObject({name: 'e195701-01', slot: '01', state: 'shut off', sshPort: 22000, ssh: 'ssh -p 22000 vagrant@blade1'})
    const xml = hv.domains.get('e195701-01')!.xml
    expect(xml).toContain("<memory unit='MiB'>256</memory>")
    expect(xml).toContain("<source file='/storage/users/e195701/images/01.qcow2'>")
    expect(xml).toContain('hostfwd=tcp:0.0.0.0:22000-:22')
    // The VM runs as its owner (uid and gid 1001 here).
    expect(xml).toContain("<seclabel type='static' model='dac' relabel='yes'><label>+1001:+1001</label></seclabel>")
    expect(await portFiles()).toEqual(['22000'])
  })

  it('refuses a second define of a defined slot, pointing at undefine and --replace', async () => {
    await run(['define', '01'])
    expect(await run(['define', '01'])).toBe(ExitCode.refused)
    expect(err.join('')).toMatch(/^Error \(SLOT_DEFINED\): Slot 01 already holds the domain e195701-01\.\nTry this:\n.*undefine 01.*--replace/)
    expect(hv.calls.filter((c) => c === 'define')).toHaveLength(1)
    expect(await portFiles()).toEqual(['22000'])
  })

  it('touches nothing when the image is refused', async () => {
    images.refuse = badInput('IMAGE_SYMLINK', 'symlink')
    expect(await run(['define', '02', '--json'])).toBe(ExitCode.badInput)
    expect(json()).toEqual({error: {code: 'IMAGE_SYMLINK', message: 'symlink', exitCode: 3, suggestions: []}})
    expect(hv.calls).toEqual([])
    expect(await portFiles()).toEqual([])
  })

  it('returns the port when libvirt refuses the definition', async () => {
    hv.failDefine = true
    expect(await run(['define', '01'])).toBe(ExitCode.remote)
    expect(await portFiles()).toEqual([])
  })

  it('says so when the port pool is empty, and defines nothing', async () => {
    for (const slot of ['01', '02', '03']) expect(await run(['define', slot])).toBe(0)
    expect(await run(['define', '04', '--json'])).toBe(ExitCode.refused)
    expect(json().error.code).toBe('POOL_EMPTY')
    expect(hv.domains.has('e195701-04')).toBe(false)
  })

  it('refuses slots beyond the limit and malformed slots before anything else', async () => {
    expect(await run(['define', '05'])).toBe(ExitCode.refused)
    expect(err.join('')).toContain('SLOT_LIMIT')
    expect(await run(['start', '../x'])).toBe(ExitCode.usage)
    expect(err.join('')).toContain('BAD_SLOT')
    expect([hv.calls, images.checked]).toEqual([[], []])
  })

  it("never shows or touches another account's domains", async () => {
    await run(['define', '01'], '1002')
    hv.domains.set('e195701-1x', {xml: '<domain/>', state: 'running'})
    hv.domains.set('e195701', {xml: '<domain/>', state: 'running'})
    expect(await run(['list', '--json'])).toBe(0)
    expect(json()).toEqual({
      account: 'e195701',
      role: 'student',
      limits: {vms: 4, vcpus: 1, memoryMiB: 256, debug: false, templates: ['normal']},
      domains: [],
    })
    for (const command of ['start', 'destroy', 'undefine']) {
      expect(await run([command, '01', '--json'])).toBe(ExitCode.refused)
      expect(json().error.code).toBe('NOT_DEFINED')
    }
    expect(hv.domains.get('k198584-01')!.state).toBe('shut off')
    expect(hv.calls).toEqual(['define'])
  })

  it('lists own domains with state and SSH, checks the image again at start, and frees the port at undefine', async () => {
    await run(['define', '02'])
    images.checked = []
    expect(await run(['start', '2'])).toBe(0)
    expect(out.join('')).toContain('Log in with: ssh -p 22000 vagrant@blade1')
    expect(images.checked).toEqual(['02'])
    expect(h.admitted).toEqual([1001])
    expect(await run(['list'])).toBe(0)
    expect(out.join('')).toMatch(/SLOT\s+NAME\s+STATE\s+DEBUG\s+SSH\n02\s+e195701-02\s+running\s+-\s+ssh -p 22000 vagrant@blade1/)
    expect(await run(['undefine', '02', '--json'])).toBe(ExitCode.refused)
    expect(json().error.code).toBe('DOMAIN_RUNNING')
    expect(await run(['destroy', '02', '--json'])).toBe(0)
    expect(json()).toMatchObject({state: 'shut off', wasRunning: true})
    expect(await run(['undefine', '02', '--remove-image', '--json'])).toBe(0)
    expect(json()).toMatchObject({name: 'e195701-02', portsFreed: [22000], removed: ['/storage/users/e195701/images/02.qcow2']})
    expect(await portFiles()).toEqual([])
  })

  it('treats start of a running VM and destroy of a stopped one as done', async () => {
    await run(['define', '01'])
    expect(await run(['destroy', '01', '--json'])).toBe(0)
    expect(json()).toMatchObject({wasRunning: false})
    await run(['start', '01'])
    expect(await run(['start', '01', '--json'])).toBe(0)
    expect(json()).toMatchObject({alreadyRunning: true, state: 'running'})
    expect(hv.calls.filter((c) => c.startsWith('start'))).toHaveLength(1)
  })

  it('runs a VM defined without the owner label (or with another) as its owner from the next start', async () => {
    await run(['define', '01'])
    const label = "<seclabel type='static' model='dac' relabel='yes'><label>+1001:+1001</label></seclabel>"
    const domain = hv.domains.get('e195701-01')!
    // As older versions defined it: no label, so libvirt's shared qemu user would run it.
    domain.xml = domain.xml.replace(label, '')
    expect(await run(['start', '01'])).toBe(0)
    expect(hv.calls).toEqual(['define', 'define', 'start e195701-01'])
    expect(domain.xml === hv.domains.get('e195701-01')!.xml).toBe(false)
    expect(hv.domains.get('e195701-01')!.xml.match(/<seclabel type='static'/g)).toHaveLength(1)
    expect(hv.domains.get('e195701-01')!.xml).toContain(label)
    // Someone else's label is replaced, not kept beside it.
    await run(['destroy', '01'])
    const d = hv.domains.get('e195701-01')!
    d.xml = d.xml.replace(label, "<seclabel type='static' model='dac' relabel='yes'><label>+0:+0</label></seclabel>")
    expect(await run(['start', '01'])).toBe(0)
    expect(hv.domains.get('e195701-01')!.xml).toContain(label)
    expect(hv.domains.get('e195701-01')!.xml).not.toContain('+0:+0')
    expect(h.admitted).toEqual([1001, 1001])
  })

  it("keeps the running VMs of the blade within bladeMemoryMiB, counting every account's", async () => {
    await h.writeConfig({bladeMemoryMiB: 600})
    await run(['define', '01'], 1002)
    expect(await run(['start', '01'], 1002)).toBe(0)
    for (const slot of ['01', '02']) await run(['define', slot])
    expect(await run(['start', '01'])).toBe(0)
    expect(await run(['start', '02', '--json'])).toBe(ExitCode.refused)
    expect(json().error).toMatchObject({
      code: 'BLADE_FULL',
      message: 'e195701-02 needs 256 MiB, but running VMs on blade1 already use 512 of the 600 MiB they may have.',
    })
    expect(hv.domains.get('e195701-02')!.state).toBe('shut off')
    // A stopped VM gives its memory back.
    await run(['destroy', '01'], 1002)
    expect(await run(['start', '02'])).toBe(0)
  })

  it('says when the account has no folder on the storage', async () => {
    await rm(join(root, 'users', 'e195701'), {recursive: true})
    expect(await run(['start', '01', '--json'])).toBe(ExitCode.refused)
    expect(json().error.code).toBe('NO_ACCOUNT_DIR')
  })

  it('prints version and help without needing a caller or libvirt', async () => {
    expect(await run(['version', '--json'], 'not-a-uid')).toBe(0)
    expect(json()).toEqual({version: expect.stringMatching(/^\d+\.\d+\.\d+/), protocol: 2})
    expect(await run(['help'], 'not-a-uid')).toBe(0)
    expect(out.join('')).toContain('Usage: sudo ie-virsh')
  })

  it('refuses a configuration that others can write', async () => {
    await writeFile(join(root, 'config.json'), '{}', {mode: 0o666})
    await chmod(join(root, 'config.json'), 0o666)
    expect(await run(['list', '--json'])).toBe(ExitCode.badInput)
    expect(json().error).toMatchObject({code: 'CONFIG_INVALID'})
  })

  it('reports usage errors in JSON too', async () => {
    expect(await run(['define', '--json'])).toBe(ExitCode.usage)
    expect(json().error).toMatchObject({code: 'USAGE', exitCode: 2})
  })
})
