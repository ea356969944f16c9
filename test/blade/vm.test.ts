import {chown, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {connect as tcpConnect} from 'node:net'

import {REPO_ROOT, SHIEN_BIN, runShien, startShien} from '../support/cli.js'
import {ensureLocalBlade, type LocalBlade} from '../support/local-blade.js'
import {closedPort} from '../support/system.js'
import {clearSlot, definedDomains} from '../support/virsh.js'

// shien vm on the "laptop" through the local blade's real sshd, sudo rule and /opt/shien ie-virsh.
const SLOT = '01'
/** The serial echo boot sector of test/integration/ie-virsh-debug.test.ts (source there). */
const ECHO_SECTOR =
  'fa31c08ed88ed0bc007cfcbafb03b003eebe4a7cac84c07405e81d00ebf6bafd03eca80174fbbaf803ec3c6172063c7a77022c20e80200ebe588c4bafd03eca82074fbbaf80388e0eec3736869656e2073657269616c206563686f2072656164790d0a00'
const TMUX = ['-L', 'shien-vm-test']

let blade: LocalBlade
let domain: string

const vm = (args: string[], home = blade.laptopHome) => runShien(['vm', ...args, '--host', blade.hostAlias, '--json'], {home})
const stateOf = async (name: string) => (await execa('virsh', ['-c', 'qemu:///system', 'domstate', name], {reject: false})).stdout.trim()

/** The echo boot sector as the student's image for SLOT, as shien push would leave an image. */
async function makeEchoImage(account: string): Promise<void> {
  const images = join(blade.storageRoot, 'users', account, 'images')
  const raw = join(images, `.${SLOT}.raw`)
  const disk = Buffer.alloc(1 << 20)
  Buffer.from(ECHO_SECTOR, 'hex').copy(disk)
  disk.writeUInt16LE(0xaa55, 510)
  await writeFile(raw, disk)
  await execa('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, join(images, `${SLOT}.qcow2`)])
  await rm(raw)
  const {stdout: ids} = await execa('id', ['-u', account])
  const {stdout: gid} = await execa('id', ['-g', account])
  await chown(join(images, `${SLOT}.qcow2`), Number(ids), Number(gid))
}

/** Waits until something accepts connections on the loopback port. */
async function waitForListen(port: number, timeoutMs = 30_000): Promise<void> {
  for (const started = Date.now(); Date.now() - started < timeoutMs; await new Promise((r) => setTimeout(r, 200))) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = tcpConnect(port, '127.0.0.1', () => {
        socket.destroy()
        resolve(true)
      })
      socket.once('error', () => resolve(false))
    })
    if (open) return
  }
  throw new Error(`nothing listens on 127.0.0.1:${port}`)
}

async function tmux(...args: string[]) {
  return execa('tmux', [...TMUX, ...args], {reject: false})
}

/** Waits until the tmux pane shows `text`; resolves with the whole screen. */
async function screenShows(text: string, timeoutMs = 30_000): Promise<string> {
  let screen = ''
  for (const started = Date.now(); Date.now() - started < timeoutMs; await new Promise((r) => setTimeout(r, 200))) {
    screen = (await tmux('capture-pane', '-p', '-t', 'console')).stdout
    if (screen.includes(text)) return screen
  }
  throw new Error(`the console never showed "${text}"; the screen was:\n${screen}`)
}

describe('shien vm through the local blade (real sshd, sudo and ie-virsh)', () => {
  beforeAll(async () => {
    blade = await ensureLocalBlade()
    domain = `${blade.account}-${SLOT}`
    await clearSlot(blade.account, SLOT)
    await makeEchoImage(blade.account)
  })

  afterAll(async () => {
    await tmux('kill-server')
    if (blade) await clearSlot(blade.account, SLOT)
  })

  it('defines, lists and starts the VM, with the ssh command as typed on the laptop', async () => {
    const defined = await vm(['define', SLOT])
    expect(defined.exitCode, defined.stderr).toBe(0)
    expect(defined.json).toMatchObject({name: domain, state: 'shut off'})
    const listed = await vm(['list'])
    const port = defined.json.sshPort
    // Other tests may hold other slots of the same student: look at this one.
    expect(listed.json.domains.find((d: {slot: string}) => d.slot === SLOT)).toEqual({
      slot: SLOT,
      name: domain,
      state: 'shut off',
      sshPort: port,
      // Through the blade, under the VM's host key alias (never [127.0.0.1]:PORT, a port other VMs reuse).
      ssh: `ssh -F ${blade.sshConfig} -J ${blade.hostAlias} -p ${port} -o HostKeyAlias=shien-${blade.account}-${SLOT}.${blade.host}-${blade.port} -i ${blade.identityFile} vagrant@127.0.0.1`,
    })
    const started = await vm(['start', SLOT])
    expect(started.json).toMatchObject({name: domain, state: 'running', alreadyRunning: false})
    expect(await stateOf(domain)).toBe('running')
    const text = await runShien(['vm', 'list', '--host', blade.hostAlias], {home: blade.laptopHome})
    expect(text.stdout).toMatch(new RegExp(`${SLOT}\\s+${domain}\\s+running\\s+-\\s+ssh -F \\S+ -J ${blade.hostAlias} `))
  })

  it('prints the domain XML', async () => {
    const r = await vm(['dumpxml', SLOT])
    expect(r.json).toMatchObject({name: domain, slot: SLOT})
    expect(r.json.xml).toContain(`<name>${domain}</name>`)
    expect(r.json.xml).toContain(`images/${SLOT}.qcow2`)
  })

  it("attaches to the VM's serial console through a real terminal, both ways, and leaves on Ctrl-]", async () => {
    await tmux('kill-session', '-t', 'console')
    const command = `cd ${REPO_ROOT} && HOME=${blade.laptopHome} SSH_AUTH_SOCK= node ${SHIEN_BIN} vm console ${SLOT} --host ${blade.hostAlias}; echo "EXIT=$?"; sleep 60`
    const opened = await tmux('new-session', '-d', '-s', 'console', '-x', '120', '-y', '30', command)
    expect(opened.exitCode, opened.stderr).toBe(0)
    await screenShows('Escape character is ^]')
    await tmux('send-keys', '-t', 'console', '-l', 'ping from the laptop')
    // The guest upper-cases what it echoes: the bytes went to the VM and came back from it.
    await screenShows('PING FROM THE LAPTOP')
    await tmux('send-keys', '-t', 'console', 'C-]')
    const screen = await screenShows('EXIT=')
    expect(screen).toContain('EXIT=0')
    expect(await stateOf(domain)).toBe('running')
  })

  it('refuses what is not the caller\'s, over SSH, and changes nothing', async () => {
    const students = [blade.account, blade.otherAccount]
    const before = await definedDomains(students)
    for (const slot of ['1; id', '../02', `${blade.account}-01`]) {
      const r = await vm(['destroy', slot])
      expect(r.json.error.code).toBe('BAD_SLOT')
      expect(r.json.error.message).toContain('is not a slot')
    }
    const other = await vm(['destroy', SLOT], blade.otherLaptopHome)
    expect(other.json.error).toMatchObject({code: 'NOT_DEFINED', message: expect.stringContaining(`${blade.otherAccount}-${SLOT}`)})
    const sneaky = await vm(['destroy', SLOT, '--account', blade.account], blade.otherLaptopHome)
    expect(sneaky.json.error).toMatchObject({code: 'NOT_ADMIN', exitCode: 6})
    expect(sneaky.exitCode).toBe(6)
    expect(await definedDomains(students)).toEqual(before)
    expect(await stateOf(domain)).toBe('running')
  })

  it("debugs it: a gdb stub on the blade that only the student reaches, forwarded to the laptop by shien vm debug", async () => {
    expect((await vm(['destroy', SLOT])).json).toMatchObject({wasRunning: true})
    const port = await closedPort()
    const shien = startShien(['vm', 'debug', SLOT, '--stop', '--port', String(port), '--host', blade.hostAlias], {home: blade.laptopHome})
    let printed = ''
    shien.stdout?.on('data', (chunk) => (printed += String(chunk)))
    for (const started = Date.now(); !printed.includes('Forwarding') && Date.now() - started < 60_000; ) await new Promise((r) => setTimeout(r, 100))
    expect(printed).toContain(`Forwarding localhost:${port} to it; attach with: gdb -ex 'target remote localhost:${port}'`)
    const socket = `/run/shien/debug/${blade.account}/${SLOT}.sock`
    try {
      const gdb = await execa('gdb', ['-batch', '-nx', '-ex', `target remote localhost:${port}`, '-ex', 'info registers rip'], {reject: false, timeout: 60_000})
      expect(gdb.stdout, gdb.stderr).toMatch(/^rip\s+0xfff0\s/m)

      // The other student forwards to the same socket with OpenSSH's own -L: sshd opens it as them.
      const theirPort = await closedPort()
      const tunnel = execa('ssh', ['-F', blade.otherSshConfig, '-N', '-o', 'ExitOnForwardFailure=yes', '-L', `${theirPort}:${socket}`, blade.hostAlias], {reject: false})
      try {
        await waitForListen(theirPort)
        const theirs = await execa('gdb', ['-batch', '-nx', '-ex', `target remote localhost:${theirPort}`, '-ex', 'info registers rip'], {reject: false, timeout: 60_000})
        expect(theirs.stdout).not.toMatch(/^rip\s/m)
      } finally {
        tunnel.kill('SIGTERM')
      }
      // sshd refused to open the socket for them; the tunnel itself was up.
      expect((await tunnel).stderr).toMatch(/open failed/)
    } finally {
      shien.kill('SIGINT')
      await shien
    }
    const listed = await vm(['list'])
    expect(listed.json.domains.find((d: {slot: string}) => d.slot === SLOT)).toMatchObject({state: 'running', debugSocket: socket})
    const plain = await vm(['debug', SLOT, '--no-forward'])
    expect(plain.json.error.code).toBe('DOMAIN_RUNNING')
    expect((await vm(['destroy', SLOT])).json).toMatchObject({wasRunning: true})
    const printedOnly = await vm(['debug', SLOT, '--no-forward'])
    expect(printedOnly.json.fromLaptop).toEqual({tunnel: `ssh -N -L 1234:${socket} ${blade.hostAlias}`, gdb: "gdb -ex 'target remote localhost:1234'"})
    expect((await vm(['destroy', SLOT])).json).toMatchObject({wasRunning: true})
    // A VM booted halted, two gdb sessions and two tunnels: over a minute on a busy TCG machine.
  }, 180_000)

  it('undefines it, keeping the image unless asked', async () => {
    const r = await vm(['undefine', SLOT])
    expect(r.json).toMatchObject({name: domain, removed: []})
    expect(await definedDomains()).not.toContain(domain)
  })
})
