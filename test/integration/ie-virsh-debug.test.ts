import {chown, mkdir, readFile, readdir, rm, stat, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest'

import {ExitCode} from '../../src/errors.js'
import {main} from '../../src/virsh/main.js'
import {ensureLibvirtd, ensureUser, virsh} from '../support/system.js'
import {emptyVirshState, makeVirshStorage} from '../support/virsh.js'

// debug, dumpxml, templates and admins against the real libvirtd (qemu:///system, TCG) and a
// real gdb; the configuration is injected by path, accounts are real Unix accounts.
const URI = 'qemu:///system'
const STUDENT = 'shien-vt3'
const OTHER = 'shien-vt4'
const ADMIN = 'shien-va1'
const ACCOUNTS = [STUDENT, OTHER, ADMIN]
const SSH_POOL = {from: 42620, to: 42627}

/**
 * A boot sector that prints a banner on the first serial port, then echoes every byte it
 * receives there, upper-cased (so an echo is the guest's, not a terminal's). No OS: SeaBIOS
 * boots it from the virtio disk in about a second under TCG. Source: the comment at the end.
 */
const ECHO_SECTOR =
  'fa31c08ed88ed0bc007cfcbafb03b003eebe4a7cac84c07405e81d00ebf6bafd03eca80174fbbaf803ec3c6172063c7a77022c20e80200ebe588c4bafd03eca82074fbbaf80388e0eec3736869656e2073657269616c206563686f2072656164790d0a00'

describe('ie-virsh debug, dumpxml, templates and admins against the real libvirtd', () => {
  let root: string
  const uid: Record<string, number> = {}
  const imagesOf = (account: string) => join(root, 'users', account, 'images')
  const image = (account: string, slot: string) => join(imagesOf(account), `${slot}.qcow2`)
  const portFiles = (pool: 'ssh') =>
    readdir(join(root, 'ports', pool)).then((n) => n.filter((f) => !f.startsWith('.')).sort(), () => [] as string[])
  const socketDir = () => join(root, 'run', 'debug')
  const allDomains = async () => (await virsh('list', '--all', '--name')).stdout.split('\n').map((l) => l.trim()).filter(Boolean).sort()
  const stateOf = async (name: string) => (await virsh('domstate', name)).stdout.trim()

  async function writeConfig(extra: Record<string, unknown> = {}) {
    const config = {
      storageRoot: root,
      libvirtUri: URI,
      domainType: 'qemu',
      templatesDir: join(root, 'etc', 'templates'),
      sshPortPool: SSH_POOL,
      debugSocketDir: socketDir(),
      listenAddress: '127.0.0.1',
      adminGroup: 'shien-admin',
      limits: {default: {vms: 4, vcpus: 1, memoryMiB: 64}, groups: {'shien-kernel': {templates: ['kernel'], debug: true}}},
      ...extra,
    }
    await writeFile(join(root, 'etc', 'config.json'), JSON.stringify(config), {mode: 0o644})
  }

  async function run(account: string, ...argv: string[]) {
    let out = ''
    const code = await main([...argv, '--json'], {
      configPath: join(root, 'etc', 'config.json'),
      env: {SUDO_UID: String(uid[account])},
      stdout: (t) => (out += t),
      stderr: () => undefined,
    })
    return {code, body: out ? JSON.parse(out) : undefined}
  }

  /** The echo boot sector as a qcow2 in the account's slot, owned by the account. */
  async function makeEchoImage(account: string, slot: string, args: string[] = []) {
    const raw = join(root, `${account}-${slot}.raw`)
    const disk = Buffer.alloc(1 << 20)
    Buffer.from(ECHO_SECTOR, 'hex').copy(disk)
    disk.writeUInt16LE(0xaa55, 510)
    await writeFile(raw, disk)
    await execa('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', ...args, raw, image(account, slot)])
    await rm(raw)
    await chown(image(account, slot), uid[account], uid[account])
  }

  /** gdb run as `account` on the blade, attached to the stub at `target` (a socket path). */
  async function gdbRegister(account: string, target: string, register: string) {
    const started = Date.now()
    const gid = Number((await execa('id', ['-g', account])).stdout)
    const r = await execa('gdb', ['-batch', '-nx', '-ex', `target remote ${target}`, '-ex', `info registers ${register}`], {
      reject: false,
      timeout: 60_000,
      uid: uid[account],
      gid,
      cwd: '/',
      env: {HOME: '/'},
    })
    const match = new RegExp(`^${register}\\s+(0x[0-9a-f]+)`, 'm').exec(r.stdout)
    return {value: match?.[1], ms: Date.now() - started, output: r.stdout + r.stderr}
  }

  beforeAll(async () => {
    await ensureLibvirtd()
    uid[STUDENT] = await ensureUser(STUDENT, ['shien-kernel'])
    uid[OTHER] = await ensureUser(OTHER)
    uid[ADMIN] = await ensureUser(ADMIN, ['shien-admin'])
    root = await makeVirshStorage('shien-ievirsh-debug-', Object.fromEntries(ACCOUNTS.map((a) => [a, uid[a]])))
    await mkdir(join(root, 'etc', 'templates'), {recursive: true})
    await writeConfig()
  })

  /** Leaves no domain, port or image behind, so a test that fails cannot make the next one fail. */
  async function cleanSlate() {
    await emptyVirshState(root, ACCOUNTS)
    await rm(join(root, 'etc', 'templates'), {recursive: true, force: true})
    await mkdir(join(root, 'etc', 'templates'))
    await writeConfig()
  }

  afterEach(cleanSlate)

  afterAll(async () => {
    if (!root) return
    await cleanSlate()
    await rm(root, {recursive: true, force: true})
  })

  it('boots a VM halted at the reset vector with a gdb stub on a socket that its owner, and only its owner, reaches', async () => {
    await makeEchoImage(STUDENT, '01')
    expect((await run(STUDENT, 'define', '01')).code).toBe(0)
    const d = await run(STUDENT, 'debug', '01', '--stop')
    const socket = join(socketDir(), STUDENT, '01.sock')
    expect(d).toMatchObject({code: 0, body: {name: `${STUDENT}-01`, state: 'paused', stopped: true, debugSocket: socket}})
    expect(d.body.gdb).toBe(`gdb -ex 'target remote ${socket}'`)
    const folder = await stat(join(socketDir(), STUDENT))
    expect([folder.uid, folder.mode & 0o777]).toEqual([uid[STUDENT], 0o700])
    // qemu, running as the student, made the socket.
    expect((await stat(socket)).uid).toBe(uid[STUDENT])

    // Another student on the blade gets nowhere, and there is no TCP stub to try instead.
    const theirs = await gdbRegister(OTHER, socket, 'rip')
    expect(theirs.value, theirs.output).toBeUndefined()
    expect(theirs.output).toMatch(/Permission denied/)
    const pid = (await readFile(`/run/libvirt/qemu/${STUDENT}-01.pid`, 'utf8')).trim()
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0')
    expect(argv.filter((a, i) => argv[i - 1] === '-gdb')).toEqual([`unix:${socket},server=on,wait=off`])

    const rip = await gdbRegister(STUDENT, socket, 'rip')
    expect(rip.value, rip.output).toBe('0xfff0')
    console.info(`gdb attached through the socket and read rip under TCG in ${rip.ms} ms`)

    // gdb's detach at the end of -batch lets the CPUs run on.
    const listed = await run(STUDENT, 'list')
    expect(listed.body.domains).toEqual([expect.objectContaining({slot: '01', state: 'running', debugSocket: socket})])
    expect((await run(STUDENT, 'destroy', '01')).body).toMatchObject({wasRunning: true})
  })

  it('gives each VM its own socket, and drops the stub at a plain start', async () => {
    await makeEchoImage(STUDENT, '01')
    await makeEchoImage(STUDENT, '02')
    for (const slot of ['01', '02']) expect((await run(STUDENT, 'define', slot)).code).toBe(0)
    const first = await run(STUDENT, 'debug', '01')
    const second = await run(STUDENT, 'debug', '02')
    expect([first.body.state, second.body.state]).toEqual(['running', 'running'])
    expect(first.body.debugSocket).not.toBe(second.body.debugSocket)
    expect((await gdbRegister(STUDENT, second.body.debugSocket, 'rip')).value).toMatch(/^0x[0-9a-f]+$/)

    await virsh('destroy', `${STUDENT}-01`)
    expect((await run(STUDENT, 'start', '01')).code).toBe(0)
    const xml = (await run(STUDENT, 'dumpxml', '01')).body.xml as string
    expect(xml).not.toContain('-gdb')
    expect(xml).toContain('hostfwd=tcp:127.0.0.1:')
    expect((await run(STUDENT, 'list')).body.domains.map((d: {debugSocket?: string}) => d.debugSocket)).toEqual([undefined, second.body.debugSocket])
  })

  it('refuses debug unless the config grants it, and changes nothing', async () => {
    await makeEchoImage(OTHER, '01')
    expect((await run(OTHER, 'define', '01')).code).toBe(0)
    const r = await run(OTHER, 'debug', '01')
    expect(r).toMatchObject({code: ExitCode.refused, body: {error: {code: 'DEBUG_NOT_ALLOWED'}}})
    expect(await stateOf(`${OTHER}-01`)).toBe('shut off')
    expect((await virsh('dumpxml', `${OTHER}-01`)).stdout).not.toContain('-gdb')
  })

  it('shows only the caller\'s XML, without the secrets libvirt keeps, and debug keeps them in the definition', async () => {
    const vnc = `<graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1' passwd='s3cr3tvn'/>`
    const normal = await import('node:fs/promises').then((fs) => fs.readFile('templates/normal.xml', 'utf8'))
    await writeFile(join(root, 'etc', 'templates', 'normal.xml'), normal.replace('<devices>', `<devices>\n    ${vnc}`), {mode: 0o644})
    await makeEchoImage(STUDENT, '01')
    const defined = await run(STUDENT, 'define', '01')
    expect(defined.code, JSON.stringify(defined.body)).toBe(0)
    const shown = await run(STUDENT, 'dumpxml', '01')
    expect(shown.body).toMatchObject({name: `${STUDENT}-01`, slot: '01'})
    expect(shown.body.xml).toContain(`<name>${STUDENT}-01</name>`)
    expect(shown.body.xml).toContain("<graphics type='vnc'")
    expect(shown.body.xml).not.toContain('s3cr3tvn')
    expect((await run(OTHER, 'dumpxml', '01')).body.error.code).toBe('NOT_DEFINED')

    expect((await run(STUDENT, 'debug', '01')).code).toBe(0)
    expect((await virsh('dumpxml', '--inactive', '--security-info', `${STUDENT}-01`)).stdout).toContain("passwd='s3cr3tvn'")
  })

  it('offers each account the templates its groups allow, and refuses any other', async () => {
    const normal = await import('node:fs/promises').then((fs) => fs.readFile('templates/normal.xml', 'utf8'))
    const kernel = normal.replace(/^<!--[\s\S]*?-->/, '<!-- Kernel course: more memory for a debug kernel. -->').replace(
      "<memory unit='MiB'>{{memoryMiB}}</memory>",
      "<memory unit='MiB'>96</memory>",
    ).replace("<currentMemory unit='MiB'>{{memoryMiB}}</currentMemory>", "<currentMemory unit='MiB'>96</currentMemory>")
    await writeFile(join(root, 'etc', 'templates', 'kernel.xml'), kernel, {mode: 0o644})
    const mine = await run(STUDENT, 'templates')
    expect(mine.body.templates.map((t: {name: string}) => t.name)).toEqual(['kernel', 'normal'])
    expect(mine.body.templates[0]).toMatchObject({summary: 'Kernel course: more memory for a debug kernel.', default: false, sshForward: true})
    expect((await run(OTHER, 'templates')).body.templates.map((t: {name: string}) => t.name)).toEqual(['normal'])

    await makeEchoImage(OTHER, '01')
    const refused = await run(OTHER, 'define', '01', '--template', 'kernel')
    expect(refused).toMatchObject({code: ExitCode.refused, body: {error: {code: 'TEMPLATE_NOT_ALLOWED'}}})
    expect((await run(OTHER, 'define', '01', '--template', '../normal')).body.error.code).toBe('TEMPLATE_NOT_ALLOWED')
    expect(await allDomains()).not.toContain(`${OTHER}-01`)
    expect(await portFiles('ssh')).toEqual([])

    await makeEchoImage(STUDENT, '01')
    expect((await run(STUDENT, 'define', '01', '--template', 'kernel')).body.template).toBe(join(root, 'etc', 'templates', 'kernel.xml'))
    expect((await virsh('dumpxml', `${STUDENT}-01`)).stdout).toContain("<memory unit='KiB'>98304</memory>")
  })

  it("lets an admin act on another account's VMs with --account, and nobody else", async () => {
    await makeEchoImage(STUDENT, '01')
    expect((await run(STUDENT, 'define', '01')).code).toBe(0)
    const theirs = await run(ADMIN, 'list', '--account', STUDENT)
    expect(theirs.body).toMatchObject({account: STUDENT, role: 'admin', domains: [expect.objectContaining({name: `${STUDENT}-01`})]})
    expect((await run(ADMIN, 'start', '01', '--account', STUDENT)).body).toMatchObject({name: `${STUDENT}-01`, state: 'running'})

    const sneaky = await run(OTHER, 'destroy', '01', '--account', STUDENT)
    expect(sneaky).toMatchObject({code: ExitCode.refused, body: {error: {code: 'NOT_ADMIN'}}})
    expect(sneaky.body.error.message).toContain('Only admins')
    expect(await stateOf(`${STUDENT}-01`)).toBe('running')

    expect((await run(ADMIN, 'destroy', '01', '--account', STUDENT)).body.wasRunning).toBe(true)
    expect((await run(ADMIN, 'list', '--account', 'no-such-user')).body.error.code).toBe('NO_SUCH_ACCOUNT')
  })
})

/*
 * ECHO_SECTOR, assembled with GNU as (.code16, -Ttext 0x7c00):
 *   cli; xor ax,ax; mov ds,ax; mov ss,ax; mov sp,0x7c00; cld
 *   mov dx,0x3fb; mov al,3; out dx,al          ; 8N1
 *   mov si,msg
 * banner: lodsb; test al,al; jz echo; call putc; jmp banner
 * echo:  mov dx,0x3fd; 1: in al,dx; test al,1; jz 1b   ; wait for a byte
 *        mov dx,0x3f8; in al,dx
 *        cmp al,'a'; jb 2f; cmp al,'z'; ja 2f; sub al,0x20
 *     2: call putc; jmp echo
 * putc:  mov ah,al; mov dx,0x3fd; 3: in al,dx; test al,0x20; jz 3b
 *        mov dx,0x3f8; mov al,ah; out dx,al; ret
 * msg:   .asciz "shien serial echo ready\r\n"
 */
