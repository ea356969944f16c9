import {createHash} from 'node:crypto'
import {chmod, chown, mkdir, mkdtemp, readFile, readdir, rename, rm, stat, symlink, writeFile} from 'node:fs/promises'
import {createServer} from 'node:net'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, afterEach, beforeAll, beforeEach, describe, expect, it} from 'vitest'

import {ExitCode} from '../../src/errors.js'
import {LocalImageGate, type ImageGate, type ImageScope} from '../../src/virsh/image-check.js'
import {main} from '../../src/virsh/main.js'
import {closedPort, ensureUser, virsh} from '../support/system.js'
import {emptyVirshState} from '../support/virsh.js'

// (With the blade's tests, one file at a time: the blade-wide memory limit below counts every
// VM running on libvirtd, so no other test may start one meanwhile.)
// What a student might try against ie-virsh, on the real libvirtd and qemu-img. Each attempt
// must be refused with a reason, and leave libvirt's domains, their states and the port pools
// exactly as they were.
const URI = 'qemu:///system'
const ME = 'shien-vt5'
const OTHER = 'shien-vt6'

describe('ie-virsh refuses abuse and changes nothing', () => {
  let root: string
  const uid: Record<string, number> = {}
  const image = (account: string, slot: string) => join(root, 'users', account, 'images', `${slot}.qcow2`)

  async function writeConfig(extra: Record<string, unknown> = {}) {
    const config = {
      storageRoot: root,
      libvirtUri: URI,
      domainType: 'qemu',
      templatesDir: join(root, 'no-admin-templates'),
      sshPortPool: {from: 42660, to: 42669},
      listenAddress: '127.0.0.1',
      limits: {default: {vms: 4, vcpus: 1, memoryMiB: 64}},
      ...extra,
    }
    await writeFile(join(root, 'config.json'), JSON.stringify(config), {mode: 0o644})
  }

  async function run(account: string, ...argv: string[]) {
    let out = ''
    const code = await main([...argv, '--json'], {
      configPath: join(root, 'config.json'),
      env: {SUDO_UID: String(uid[account])},
      stdout: (t) => (out += t),
      stderr: () => undefined,
    })
    return {code, body: JSON.parse(out)}
  }

  async function makeImage(account: string, slot: string, args: string[] = []) {
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', ...args, image(account, slot), '16M'])
    await chown(image(account, slot), uid[account], uid[account])
  }

  /** libvirt's domains with their states, and the port files: what must not change. */
  async function snapshot() {
    // This test's accounts' domains: nothing else of theirs may change.
    const ours = (n: string) => n.startsWith(`${ME}-`) || n.startsWith(`${OTHER}-`)
    const names = (await virsh('list', '--all', '--name')).stdout.split('\n').map((l) => l.trim()).filter((n) => n !== '' && ours(n)).sort()
    const states = await Promise.all(names.map(async (n) => `${n}=${(await virsh('domstate', n)).stdout.trim()}`))
    const ports = async (pool: string) => (await readdir(join(root, 'ports', pool)).catch(() => [] as string[])).filter((f) => !f.startsWith('.')).sort()
    return {states, ssh: await ports('ssh')}
  }

  /** Runs the attempt and checks it was refused with `code` and a reason, leaving everything as it was. */
  async function refused(account: string, argv: string[], code: string, exitCode: number, reason: RegExp) {
    const before = await snapshot()
    const r = await run(account, ...argv)
    expect(r.body.error, JSON.stringify(r.body)).toMatchObject({code, exitCode})
    expect(r.body.error.message).toMatch(reason)
    expect(r.code).toBe(exitCode)
    expect(await snapshot()).toEqual(before)
  }

  beforeAll(async () => {
    for (const account of [ME, OTHER]) uid[account] = await ensureUser(account)
    root = await mkdtemp('/tmp/shien-abuse-')
    await chmod(root, 0o755)
    // libvirt's qemu user must pass through, as through /gfs2/shien/users on a blade.
    await mkdir(join(root, 'users'), {mode: 0o755})
    for (const account of [ME, OTHER]) {
      await mkdir(join(root, 'users', account, 'images'), {recursive: true, mode: 0o700})
      await chown(join(root, 'users', account), uid[account], uid[account])
      await chown(join(root, 'users', account, 'images'), uid[account], uid[account])
    }
  })

  beforeEach(async () => {
    await writeConfig()
    // The other student has a defined VM in slot 01: the target of the attempts.
    await makeImage(OTHER, '01')
    expect((await run(OTHER, 'define', '01')).code).toBe(0)
  })

  afterEach(() => emptyVirshState(root, [ME, OTHER]))

  afterAll(async () => {
    if (root) await rm(root, {recursive: true, force: true})
  })

  it.each([
    ['another account\'s domain by name', ['start', `${OTHER}-01`], 'BAD_SLOT', ExitCode.usage, /is not a slot/],
    ['a shell command as the slot', ['start', '1; id'], 'BAD_SLOT', ExitCode.usage, /is not a slot/],
    ['a path as the slot', ['undefine', '../02'], 'BAD_SLOT', ExitCode.usage, /is not a slot/],
    ['slot 05, beyond the limit', ['define', '05'], 'SLOT_LIMIT', ExitCode.refused, /beyond your limit of 4/],
    ['--account without being an admin', ['destroy', '01', '--account', OTHER], 'NOT_ADMIN', ExitCode.refused, /Only admins/],
    ['a template that is not allowed', ['define', '01', '--template', 'kernel'], 'TEMPLATE_NOT_ALLOWED', ExitCode.refused, /not one shien-vt5 may use/],
  ])('%s', async (_what, argv, code, exitCode, reason) => {
    await makeImage(ME, '01')
    await refused(ME, argv as string[], code as string, exitCode as number, reason as RegExp)
  })

  it('a fifth VM', async () => {
    for (const slot of ['01', '02', '03', '04']) {
      await makeImage(ME, slot)
      expect((await run(ME, 'define', slot)).code).toBe(0)
    }
    await makeImage(ME, '05')
    await refused(ME, ['define', '05'], 'SLOT_LIMIT', ExitCode.refused, /limit of 4 VMs/)
  })

  it.each([
    ['backed by /etc/hostname', ['-b', '/etc/hostname', '-F', 'raw'], 'BACKING_OUTSIDE', /outside your images folder/],
    // The student cannot enter the other's folder, so cannot tell whether the file exists.
    ['backed by another student\'s image', () => ['-b', image(OTHER, '01'), '-F', 'qcow2'], 'BACKING_MISSING', /does not exist, or you cannot read it/],
    ['with an external data file', () => ['-o', `data_file=${join(root, 'users', ME, 'images', '01.data')}`], 'DATA_FILE', /external file/],
  ])('a qcow2 %s', async (_what, args, code, reason) => {
    await makeImage(ME, '01', typeof args === 'function' ? args() : (args as string[]))
    await refused(ME, ['define', '01'], code as string, ExitCode.badInput, reason as RegExp)
  })

  it("an image that is a symlink to another student's image", async () => {
    await symlink(image(OTHER, '01'), image(ME, '01'))
    await refused(ME, ['define', '01'], 'IMAGE_SYMLINK', ExitCode.badInput, /symlink/)
  })

  it('LDAP down', async () => {
    await makeImage(ME, '01')
    const ldap = {url: `ldap://127.0.0.1:${await closedPort()}`, userBase: 'ou=people,dc=x', groupBase: 'ou=groups,dc=x', timeoutMs: 2000}
    await writeConfig({ldap})
    await refused(ME, ['define', '01'], 'DIRECTORY_UNAVAILABLE', ExitCode.remote, /no rights can be granted/)
  })

  it('more memory for running VMs than the blade allows', async () => {
    await writeConfig({bladeMemoryMiB: 100})
    expect((await run(OTHER, 'start', '01')).code).toBe(0)
    await makeImage(ME, '01')
    expect((await run(ME, 'define', '01')).code).toBe(0)
    await refused(ME, ['start', '01'], 'BLADE_FULL', ExitCode.refused, /needs 64 MiB, but running VMs on .* already use \d+ of the 100 MiB/)
  })

  it('an empty SSH port pool', async () => {
    // Two ports: the other student's VM holds one.
    await writeConfig({sshPortPool: {from: 42660, to: 42661}})
    await makeImage(ME, '01')
    expect((await run(ME, 'define', '01')).code).toBe(0)
    await makeImage(ME, '02')
    await refused(ME, ['define', '02'], 'POOL_EMPTY', ExitCode.refused, /All SSH ports 42660-42661 are in use/)
  })

  /** ie-virsh with a gate that lets `act` run right after the image check, as a racing student would. */
  async function runRaced(account: string, act: () => Promise<void>, ...argv: string[]) {
    let out = ''
    const imageGate = (scope: ImageScope): ImageGate => {
      const real = new LocalImageGate(scope)
      return {
        check: async (slot, o) => {
          const checked = await real.check(slot, o)
          await act()
          return checked
        },
        removeImage: async (slot, o) => {
          await act()
          return real.removeImage(slot, o)
        },
      }
    }
    const code = await main([...argv, '--json'], {
      configPath: join(root, 'config.json'),
      env: {SUDO_UID: String(uid[account])},
      imageGate,
      stdout: (t) => (out += t),
      stderr: () => undefined,
    })
    return {code, body: JSON.parse(out)}
  }

  const sha = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex')
  const acl = async (path: string) => (await execa('getfacl', ['--omit-header', '--absolute-names', path])).stdout

  it("a qcow2 swapped in after start's check, whose data file is another student's disk, gives qemu nothing of theirs", async () => {
    const theirs = image(OTHER, '01')
    await execa('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5a 0 64k', theirs])
    const before = {sha: await sha(theirs), acl: await acl(theirs)}
    await makeImage(ME, '01')
    expect((await run(ME, 'define', '01')).code).toBe(0)
    // qemu-img create would truncate the data file it names, so name a stand-in of the same
    // length and write the real name into the header afterwards, as an attacker would.
    const evil = join(root, 'users', ME, 'evil.qcow2')
    const standIn = join(root, 'users', ME, 'images', 'xx.qcow2')
    expect(standIn.length).toBe(theirs.length)
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', `data_file=${standIn},data_file_raw=on`, evil, '16M'])
    const bytes = await readFile(evil)
    const at = bytes.indexOf(standIn)
    expect(at).toBeGreaterThan(0)
    bytes.write(theirs, at)
    await writeFile(evil, bytes)
    await rm(standIn)
    await chown(evil, uid[ME], uid[ME])
    const r = await runRaced(ME, () => rename(evil, image(ME, '01')), 'start', '01')
    expect(r.code, JSON.stringify(r.body)).not.toBe(0)
    expect(r.body.error.message).toMatch(/Permission denied/)
    expect((await virsh('domstate', `${ME}-01`)).stdout.trim()).toBe('shut off')
    expect(await sha(theirs)).toBe(before.sha)
    // No shared qemu user was given a way in, then or before.
    expect(await acl(theirs)).toBe(before.acl)
    expect(before.acl).not.toContain('libvirt-qemu')
  })

  it('the VM runs as its owner, and its image stays the owner\'s', async () => {
    await makeImage(ME, '01')
    expect((await run(ME, 'define', '01')).code).toBe(0)
    expect((await run(ME, 'start', '01')).code).toBe(0)
    const pid = (await readFile(`/run/libvirt/qemu/${ME}-01.pid`, 'utf8')).trim()
    const status = await readFile(`/proc/${pid}/status`, 'utf8')
    expect(/^Uid:\s+(\d+)/m.exec(status)?.[1]).toBe(String(uid[ME]))
    const gid = (await execa('id', ['-g', ME])).stdout.trim()
    expect(/^Gid:\s+(\d+)/m.exec(status)?.[1]).toBe(gid)
    const {uid: owner} = await stat(image(ME, '01'))
    expect(owner).toBe(uid[ME])
  })

  it("undefine --remove-image with the images folder swapped for a link to another student's", async () => {
    const theirs = image(OTHER, '01')
    const before = await sha(theirs)
    await makeImage(ME, '01')
    expect((await run(ME, 'define', '01')).code).toBe(0)
    const mine = join(root, 'users', ME, 'images')
    const swap = async () => {
      await rename(mine, `${mine}.real`)
      await symlink(join(root, 'users', OTHER, 'images'), mine)
    }
    try {
      const r = await runRaced(ME, swap, 'undefine', '01', '--remove-image')
      expect(r.body.error, JSON.stringify(r.body)).toMatchObject({code: 'IMAGE_NOT_REMOVED'})
      expect(r.body.error.message).toMatch(/Permission denied/)
      expect(r.body.error.message).toContain(`${ME}-01 was undefined`)
      expect(await sha(theirs)).toBe(before)
      expect((await virsh('domstate', `${OTHER}-01`)).stdout.trim()).toBe('shut off')
    } finally {
      await rm(mine)
      await rename(`${mine}.real`, mine)
    }
  })
})
