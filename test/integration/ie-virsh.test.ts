import {execFileSync} from 'node:child_process'
import {chmod, chown, mkdir, readdir, rename, rm, stat, symlink, writeFile} from 'node:fs/promises'
import {connect} from 'node:net'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest'

import {ExitCode} from '../../src/errors.js'
import {main} from '../../src/virsh/main.js'
import {ensureLibvirtd, ensureUser, virsh} from '../support/system.js'
import {emptyVirshState, makeVirshStorage} from '../support/virsh.js'

// Real libvirtd (qemu:///system, TCG), real qemu-img, real accounts; config injected by path.
const URI = 'qemu:///system'
const ACCOUNTS = ['shien-vt1', 'shien-vt2'] as const
const PORTS = {from: 42610, to: 42619}

describe('ie-virsh against the real libvirtd', () => {
  let root: string
  const uid: Record<string, number> = {}
  const imagesOf = (account: string) => join(root, 'users', account, 'images')
  const image = (account: string, slot: string) => join(imagesOf(account), `${slot}.qcow2`)
  const portFiles = () => readdir(join(root, 'ports', 'ssh')).catch(() => [] as string[])
  const defined = async (name: string) => (await virsh('domstate', name)).exitCode === 0

  async function run(account: string, ...argv: string[]) {
    let out = ''
    let err = ''
    const code = await main([...argv, '--json'], {
      configPath: join(root, 'etc', 'config.json'),
      env: {SUDO_UID: String(uid[account])},
      stdout: (t) => (out += t),
      stderr: (t) => (err += t),
    })
    return {code, body: out ? JSON.parse(out) : undefined, err}
  }

  /** A real qcow2 made by qemu-img, owned by the student like shien push leaves it. */
  async function makeImage(account: string, slot: string, args: string[] = [], owner = account) {
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', ...args, image(account, slot), '64M'])
    await chown(image(account, slot), uid[owner], uid[owner])
  }

  beforeAll(async () => {
    await ensureLibvirtd()
    for (const account of ACCOUNTS) uid[account] = await ensureUser(account)
    root = await makeVirshStorage('shien-ievirsh-', Object.fromEntries(ACCOUNTS.map((a) => [a, uid[a]])))
    await mkdir(join(root, 'boxes', 'os', '1.0'), {recursive: true, mode: 0o755})
    await mkdir(join(root, 'etc'))
    const config = {
      storageRoot: root,
      libvirtUri: URI,
      domainType: 'qemu',
      templatesDir: join(root, 'etc', 'templates'),
      sshPortPool: PORTS,
      listenAddress: '127.0.0.1',
      limits: {default: {vms: 4, vcpus: 1, memoryMiB: 128}},
    }
    await writeFile(join(root, 'etc', 'config.json'), JSON.stringify(config), {mode: 0o644})
  })

  /** Leaves no domain, port or image behind, so a test that fails cannot make the next one fail. */
  const cleanSlate = () => emptyVirshState(root, ACCOUNTS)

  afterEach(cleanSlate)

  afterAll(async () => {
    if (!root) return
    await cleanSlate()
    await rm(root, {recursive: true, force: true})
  })

  it('defines, lists, starts, stops and undefines a VM, keeping the image the student\'s', async () => {
    await makeImage('shien-vt1', '01')
    const d = await run('shien-vt1', 'define', '01')
    expect(d).toMatchObject({code: 0, body: {name: 'shien-vt1-01', state: 'shut off'}})
    const port: number = d.body.sshPort
    expect(port).toBeGreaterThanOrEqual(PORTS.from)
    expect(await portFiles()).toEqual([String(port)])
    // No shared qemu user gets a way into the student's image: the VM runs as the student.
    expect(execFileSync('getfacl', ['--omit-header', '--absolute-names', image('shien-vt1', '01')], {encoding: 'utf8'})).not.toContain('libvirt-qemu')

    expect((await run('shien-vt1', 'list')).body.domains).toEqual([
      {slot: '01', name: 'shien-vt1-01', state: 'shut off', sshPort: port, ssh: `ssh -p ${port} vagrant@127.0.0.1`},
    ])

    expect(await run('shien-vt1', 'start', '01')).toMatchObject({code: 0, body: {state: 'running', alreadyRunning: false}})
    expect((await run('shien-vt1', 'list')).body.domains[0].state).toBe('running')
    // qemu runs as the student, and libvirt did not take the image over.
    const qemuUser = execFileSync('ps', ['-o', 'uid=', '-C', 'qemu-system-x86_64', '-ww', '-o', 'args='], {encoding: 'utf8'})
      .split('\n')
      .find((l) => l.includes('guest=shien-vt1-01'))
    expect(qemuUser?.trim().split(/\s+/)[0]).toBe(String(uid['shien-vt1']))
    expect((await stat(image('shien-vt1', '01'))).uid).toBe(uid['shien-vt1'])
    // The SSH forward listens: qemu's user network accepts on the host side.
    await new Promise<void>((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => (s.end(), resolve()))
      s.on('error', reject)
    })

    expect(await run('shien-vt1', 'destroy', '01')).toMatchObject({code: 0, body: {state: 'shut off', wasRunning: true}})
    expect(await run('shien-vt1', 'undefine', '01')).toMatchObject({code: 0, body: {portsFreed: [port], removed: []}})
    expect(await defined('shien-vt1-01')).toBe(false)
    expect(await portFiles()).toEqual([])
    expect((await stat(image('shien-vt1', '01'))).uid).toBe(uid['shien-vt1'])
  })

  it('gives libvirt the vetted backing chain onto a published box, and removes the image on request', async () => {
    const box = join(root, 'boxes', 'os', '1.0', 'box.qcow2')
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', box, '64M'])
    await chmod(box, 0o644)
    await makeImage('shien-vt1', '02', ['-b', box, '-F', 'qcow2'])
    await writeFile(join(imagesOf('shien-vt1'), '02.json'), '{}')
    expect((await run('shien-vt1', 'define', '02')).body.image.backingChain).toEqual([box])
    const xml = (await virsh('dumpxml', 'shien-vt1-02')).stdout
    expect(xml).toMatch(new RegExp(`<backingStore type='file'>\\s*<format type='qcow2'/>\\s*<source file='${box}'>`))
    const r = await run('shien-vt1', 'undefine', '02', '--remove-image')
    expect(r.body.removed).toEqual([image('shien-vt1', '02'), join(imagesOf('shien-vt1'), '02.json')])
    expect(await defined('shien-vt1-02')).toBe(false)
  })

  describe('refusals (nothing is defined, no port is taken)', () => {
    const refused = async (slot: string, code: string, exitCode: number = ExitCode.badInput) => {
      const r = await run('shien-vt1', 'define', slot)
      expect(r.body.error).toMatchObject({code, exitCode})
      expect(await defined(`shien-vt1-${slot}`)).toBe(false)
      expect(await portFiles()).toEqual([])
      await rm(image('shien-vt1', slot), {force: true})
    }

    it('a symlink image', async () => {
      await makeImage('shien-vt1', '04')
      await symlink(image('shien-vt1', '04'), image('shien-vt1', '03'))
      await refused('03', 'IMAGE_SYMLINK')
      await rm(image('shien-vt1', '04'))
    })

    it('an image reached through a symlinked images folder', async () => {
      const real = join(root, 'users', 'shien-vt1', 'real-images')
      await rename(imagesOf('shien-vt1'), real)
      await symlink(real, imagesOf('shien-vt1'))
      try {
        await makeImage('shien-vt1', '03')
        await refused('03', 'IMAGE_SYMLINK')
      } finally {
        await rm(imagesOf('shien-vt1'))
        await rename(real, imagesOf('shien-vt1'))
      }
    })

    it("an image owned by another user", async () => {
      await makeImage('shien-vt1', '03', [], 'shien-vt2')
      await refused('03', 'IMAGE_NOT_OWNED')
    })

    it('a raw file named .qcow2', async () => {
      await execa('qemu-img', ['create', '-q', '-f', 'raw', image('shien-vt1', '03'), '64M'])
      await chown(image('shien-vt1', '03'), uid['shien-vt1'], uid['shien-vt1'])
      await refused('03', 'IMAGE_NOT_QCOW2')
    })

    it('a qcow2 backed by /etc/passwd as raw', async () => {
      await makeImage('shien-vt1', '03', ['-b', '/etc/passwd', '-F', 'raw'])
      await refused('03', 'BACKING_OUTSIDE')
    })

    it('a qcow2 with an external data file', async () => {
      await makeImage('shien-vt1', '03', ['-o', `data_file=${join(imagesOf('shien-vt1'), '03.data')}`])
      await refused('03', 'DATA_FILE')
      await rm(join(imagesOf('shien-vt1'), '03.data'))
    })

    it('slot 05 (beyond the limit of 4) and slot ../x', async () => {
      await refused('05', 'SLOT_LIMIT', ExitCode.refused)
      await refused('../x', 'BAD_SLOT', ExitCode.usage)
    })
  })

  it("never shows or touches another account's domain of the same slot", async () => {
    await makeImage('shien-vt2', '01')
    expect((await run('shien-vt2', 'define', '01')).code).toBe(0)
    expect((await run('shien-vt1', 'list')).body.domains).toEqual([])
    expect((await run('shien-vt1', 'start', '01')).body.error.code).toBe('NOT_DEFINED')
    expect((await run('shien-vt1', 'undefine', '01')).body.error.code).toBe('NOT_DEFINED')
    expect(await defined('shien-vt2-01')).toBe(true)
    expect((await run('shien-vt2', 'list')).body.domains.map((d: {name: string}) => d.name)).toEqual(['shien-vt2-01'])
    expect((await run('shien-vt2', 'undefine', '01')).code).toBe(0)
  })

  it('refuses a second define of a defined slot', async () => {
    await makeImage('shien-vt1', '01')
    expect((await run('shien-vt1', 'define', '01')).code).toBe(0)
    const second = await run('shien-vt1', 'define', '01')
    expect(second.body.error).toMatchObject({code: 'SLOT_DEFINED', exitCode: ExitCode.refused})
    expect(second.body.error.suggestions.join(' ')).toMatch(/undefine 01.*--replace/)
    expect((await portFiles()).length).toBe(1)
    expect((await run('shien-vt1', 'undefine', '01')).code).toBe(0)
  })

  it('lets exactly one of two concurrent defines of the same slot succeed', async () => {
    await makeImage('shien-vt1', '02')
    const results = await Promise.all([run('shien-vt1', 'define', '02'), run('shien-vt1', 'define', '02')])
    expect(results.map((r) => r.code).sort()).toEqual([0, ExitCode.refused])
    expect(results.find((r) => r.code !== 0)?.body.error.code).toBe('SLOT_DEFINED')
    expect((await portFiles()).length).toBe(1)
    expect((await run('shien-vt1', 'undefine', '02')).body.portsFreed).toHaveLength(1)
    expect(await portFiles()).toEqual([])
  })
})
