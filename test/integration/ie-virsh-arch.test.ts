import {chmod, chown, link, lstat, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest'

import {ExitCode} from '../../src/errors.js'
import {main} from '../../src/virsh/main.js'
import {ensureLibvirtd, ensureUser, virsh} from '../support/system.js'
import {emptyVirshState} from '../support/virsh.js'

// ie-virsh defining aarch64 and UEFI domains through the real libvirtd (qemu:///system, TCG),
// with real accounts; the image's platform comes from its record, as harden writes it.
const URI = 'qemu:///system'
const ACCOUNTS = ['shien-va1'] as const
const PORTS = {from: 42640, to: 42649}

describe('ie-virsh: aarch64 and UEFI domains against the real libvirtd', () => {
  let root: string
  const uid: Record<string, number> = {}
  const imagesOf = (account: string) => join(root, 'users', account, 'images')
  const image = (slot: string) => join(imagesOf('shien-va1'), `${slot}.qcow2`)
  const store = (slot: string) => join(imagesOf('shien-va1'), `${slot}.vars.fd`)
  const defined = async (name: string) => (await virsh('domstate', name)).exitCode === 0

  async function run(...argv: string[]) {
    let out = ''
    const code = await main([...argv, '--json'], {
      configPath: join(root, 'etc', 'config.json'),
      env: {SUDO_UID: String(uid['shien-va1'])},
      stdout: (t) => (out += t),
      stderr: () => undefined,
    })
    return {code, body: out ? JSON.parse(out) : undefined}
  }

  async function writeConfig(arch?: object) {
    const config = {
      storageRoot: root, libvirtUri: URI, domainType: 'qemu', templatesDir: join(root, 'etc', 'templates'),
      sshPortPool: PORTS, listenAddress: '127.0.0.1', limits: {default: {vms: 4, vcpus: 1, memoryMiB: 256}},
      ...(arch ? {arch} : {}),
    }
    await writeFile(join(root, 'etc', 'config.json'), JSON.stringify(config), {mode: 0o644})
  }

  /** An image and its record as shien push leaves them, owned by the student. */
  async function pushed(slot: string, platform: {architecture: string; firmware: string}) {
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', image(slot), '64M'])
    await chown(image(slot), uid['shien-va1'], uid['shien-va1'])
    const record = join(imagesOf('shien-va1'), `${slot}.json`)
    await writeFile(record, JSON.stringify({slot, ...platform}))
    await chown(record, uid['shien-va1'], uid['shien-va1'])
  }

  beforeAll(async () => {
    await ensureLibvirtd()
    for (const account of ACCOUNTS) uid[account] = await ensureUser(account)
    root = await mkdtemp('/tmp/shien-ievirsh-arch-')
    await chmod(root, 0o755)
    await mkdir(join(root, 'users'), {mode: 0o755})
    await mkdir(imagesOf('shien-va1'), {recursive: true, mode: 0o700})
    await chown(join(root, 'users', 'shien-va1'), uid['shien-va1'], uid['shien-va1'])
    await chown(imagesOf('shien-va1'), uid['shien-va1'], uid['shien-va1'])
    await mkdir(join(root, 'etc'))
    await writeConfig({native: [], emulated: ['x86_64', 'aarch64']})
  })

  const cleanSlate = () => emptyVirshState(root, ACCOUNTS)
  afterEach(async () => {
    await cleanSlate()
    await writeConfig({native: [], emulated: ['x86_64', 'aarch64']})
  })
  afterAll(async () => {
    if (!root) return
    await cleanSlate()
    await rm(root, {recursive: true, force: true})
  })

  it('defines an aarch64 image as a virt machine with AAVMF and its store in the student\'s images folder, the student\'s', async () => {
    await pushed('01', {architecture: 'aarch64', firmware: 'efi'})
    const d = await run('define', '01')
    expect(d).toMatchObject({code: 0, body: {name: 'shien-va1-01', arch: 'aarch64', firmware: 'efi', emulated: true, nvram: store('01')}})
    const xml = (await virsh('dumpxml', 'shien-va1-01')).stdout
    expect(xml).toMatch(/<type arch='aarch64' machine='virt[^']*'>hvm<\/type>/)
    expect(xml).toContain("<loader readonly='yes' type='pflash'>/usr/share/AAVMF/AAVMF_CODE.fd</loader>")
    expect(xml).toContain(`<source file='${store('01')}'>`)
    expect(xml).toMatch(/<cpu mode='custom' match='exact' check='none'>\s*<model fallback='forbid'>cortex-a57<\/model>/)
    const info = await stat(store('01'))
    expect([info.uid, info.mode & 0o777, info.size]).toEqual([uid['shien-va1'], 0o600, 64 << 20])
    // libvirt keeps the store where ie-virsh made it, and keeps it the student's, through a start.
    expect((await run('start', '01')).code).toBe(0)
    expect((await stat(store('01'))).uid).toBe(uid['shien-va1'])
    expect((await run('destroy', '01')).code).toBe(0)
    expect((await run('undefine', '01', '--remove-image')).body.removed).toContain(store('01'))
    await expect(lstat(store('01'))).rejects.toMatchObject({code: 'ENOENT'})
  })

  it('defines an EFI x86_64 image with OVMF and its own store', async () => {
    await pushed('02', {architecture: 'x86_64', firmware: 'efi'})
    expect(await run('define', '02')).toMatchObject({code: 0, body: {arch: 'x86_64', firmware: 'efi', nvram: store('02')}})
    const xml = (await virsh('dumpxml', 'shien-va1-02')).stdout
    expect(xml).toContain('/usr/share/OVMF/OVMF_CODE_4M.fd</loader>')
    expect((await stat(store('02'))).uid).toBe(uid['shien-va1'])
  })

  it('refuses an architecture the blade config does not allow, with nothing written', async () => {
    await writeConfig({native: [], emulated: ['x86_64']})
    await pushed('03', {architecture: 'aarch64', firmware: 'efi'})
    expect(await run('define', '03')).toMatchObject({code: ExitCode.refused, body: {error: {code: 'BLADE_ARCH_UNSUPPORTED'}}})
    expect(await defined('shien-va1-03')).toBe(false)
    await expect(lstat(store('03'))).rejects.toMatchObject({code: 'ENOENT'})
  })

  it('refuses a symlink or a hard link planted at the store, at define and at start, and writes nothing through them', async () => {
    const victim = join(root, 'etc', 'victim')
    await writeFile(victim, 'root only\n', {mode: 0o644})
    await pushed('04', {architecture: 'aarch64', firmware: 'efi'})
    await symlink(victim, store('04'))
    expect(await run('define', '04')).toMatchObject({code: ExitCode.badInput, body: {error: {code: 'NVRAM_UNSAFE'}}})
    expect(await defined('shien-va1-04')).toBe(false)
    await rm(store('04'))
    // Defined with a good store, then swapped for a link before the start.
    expect((await run('define', '04')).code).toBe(0)
    await rm(store('04'))
    await symlink(victim, store('04'))
    expect(await run('start', '04')).toMatchObject({code: ExitCode.badInput, body: {error: {code: 'NVRAM_UNSAFE'}}})
    await rm(store('04'))
    const own = join(imagesOf('shien-va1'), 'notes.txt')
    await writeFile(own, 'notes')
    await chown(own, uid['shien-va1'], uid['shien-va1'])
    await link(own, store('04'))
    expect(await run('start', '04')).toMatchObject({code: ExitCode.badInput, body: {error: {code: 'NVRAM_UNSAFE'}}})
    expect((await virsh('domstate', 'shien-va1-04')).stdout.trim()).toBe('shut off')
    expect(await readFile(victim, 'utf8')).toBe('root only\n')
    expect((await stat(victim)).uid).toBe(0)
    expect(await readFile(own, 'utf8')).toBe('notes')
  })
})
