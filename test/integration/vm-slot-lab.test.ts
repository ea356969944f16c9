import {appendFileSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {connect, createServer, type Server} from 'node:net'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, beforeEach, describe, expect, it} from 'vitest'

import {BLADE_PROTOCOL} from '../../src/protocol/blade-steps.js'
import {runShien, startShien} from '../support/cli.js'
import {closedPort} from '../support/system.js'
import {labLaptopHome, startVmLab, type VmLab} from '../support/vm-lab.js'

// `shien vm dumpxml`, `undefine` and `debug` follow the slot to the blade that has it, over real
// SSH: two lab blades of this test's own (test/support/vm-lab.ts: real sshds answering from files,
// never the local blade). The student names blade-a, which answers NOT_DEFINED as ie-virsh does
// for a slot it does not have; blade-b lists the slot and answers. The cluster lab runs the same
// commands against the real ie-virsh (test/integration/vm-list-cluster.test.ts).
let a: VmLab
let b: VmLab
let home: string
let stub: Server
let stubSocket: string

const hello = (cluster?: unknown) => ({version: '0.1.0', protocol: BLADE_PROTOCOL, account: 'e195701', home: '/gfs2/shien/users/e195701', ...(cluster === undefined ? {} : {cluster})})
const list = (...slots: string[]) => ({account: 'e195701', role: 'student', limits: {vms: 4, vcpus: 2, memoryMiB: 2048}, domains: slots.map((slot) => ({slot, name: `e195701-${slot}`, state: 'shut off'}))})
const cluster = () => ({self: 'blade-a', blades: [
  {name: 'blade-a', ssh: `127.0.0.1:${a.bladePort}`, native: ['x86_64'], keepFreeMiB: 0},
  {name: 'blade-b', ssh: `127.0.0.1:${b.bladePort}`, native: ['x86_64'], keepFreeMiB: 0},
]})
const notDefined = (slot: string) => ({error: {code: 'NOT_DEFINED', message: `Slot ${slot} has no domain (e195701-${slot} is not defined).`, exitCode: 6, suggestions: []}})
const shien = (...args: string[]) => runShien(['vm', ...args, '--host', 'labblade'], {home})
/** The `ie-virsh ...` and `shien blade ...` steps each lab blade was asked, by their first words. */
const asked = (lab: VmLab) => lab.commands().map((c) => c.replace(/^sudo -n /, '').split(' ').slice(0, 3).join(' '))

beforeAll(async () => {
  ;[a, b] = await Promise.all([startVmLab(), startVmLab()])
  // One key logs in to both (a student's key on every blade).
  appendFileSync(join(b.dir, 'authorized_keys'), readFileSync(`${a.clientKey}.pub`))
  ;({home} = labLaptopHome('vm-slot-lab-laptop-', [a, b]))
  // blade-b's "gdb stub": a UNIX socket on blade-b only (its sshd opens it for a forward).
  stubSocket = join(b.dir, 'e195701-02.sock')
  stub = createServer((socket) => socket.end('blade-b stub\n'))
  await new Promise<void>((resolve) => stub.listen(stubSocket, resolve))
}, 60_000)
afterAll(async () => {
  await new Promise((resolve) => stub?.close(resolve))
  await Promise.all([a?.stop(), b?.stop()])
  rmSync(home, {recursive: true, force: true})
})
beforeEach(() => {
  for (const lab of [a, b]) writeFileSync(join(lab.dir, 'commands.log'), '')
  a.answer('blade hello', hello(cluster()))
  b.answer('blade hello', hello(cluster()))
  a.answer('ie-virsh list', list('01'))
  b.answer('ie-virsh list', list('02'))
  for (const command of ['ie-virsh dumpxml', 'ie-virsh undefine', 'ie-virsh debug'] as const) a.answer(command, notDefined('02'))
  b.answer('ie-virsh dumpxml', {name: 'e195701-02', slot: '02', xml: '<domain type="qemu"><name>e195701-02</name><!-- blade-b --></domain>\n'})
  b.answer('ie-virsh undefine', {name: 'e195701-02', slot: '02', portsFreed: [22002], removed: []})
  b.answer('ie-virsh debug', {name: 'e195701-02', slot: '02', state: 'running', debugSocket: stubSocket, stopped: false, gdb: `gdb -ex 'target remote ${stubSocket}'`})
})

describe('shien vm dumpxml, undefine and debug of a slot on another blade of the cluster', () => {
  it('vm dumpxml names blade-a and prints blade-b\'s XML; "2" is slot 02', async () => {
    const r = await shien('dumpxml', '2', '--json')
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    expect(r.json).toEqual({name: 'e195701-02', slot: '02', xml: expect.stringContaining('<!-- blade-b -->')})
    expect(asked(a)).toEqual(['ie-virsh dumpxml 2', 'shien blade hello'])
    expect(asked(b)).toEqual(['ie-virsh list --json', 'ie-virsh dumpxml 2'])

    const human = await shien('dumpxml', '02')
    expect(human.exitCode, human.stderr).toBe(0)
    expect(human.stdout).toBe('<domain type="qemu"><name>e195701-02</name><!-- blade-b --></domain>')
  }, 60_000)

  it('vm undefine names blade-a and undefines on blade-b, --remove-image passed on', async () => {
    const r = await shien('undefine', '02', '--remove-image', '--json')
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    expect(r.json).toEqual({name: 'e195701-02', slot: '02', portsFreed: [22002], removed: []})
    expect(b.commands()).toContain('sudo -n ie-virsh undefine 02 --remove-image --json')
    expect(asked(a)).toEqual(['ie-virsh undefine 02', 'shien blade hello'])
  }, 60_000)

  it('vm debug --no-forward prints a tunnel to blade-b, one OpenSSH takes and that reaches blade-b\'s stub', async () => {
    const r = await shien('debug', '02', '--no-forward', '--json')
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    const tunnel = `ssh -N -L 1234:${stubSocket} -p ${b.bladePort} 127.0.0.1`
    expect(r.json).toMatchObject({name: 'e195701-02', debugSocket: stubSocket, fromLaptop: {tunnel, gdb: "gdb -ex 'target remote localhost:1234'"}})
    expect(asked(b)).toEqual(['ie-virsh list --json', 'ie-virsh debug 02'])

    // The printed command, run as typed (with the laptop's ssh config and a port of this test's), forwards to blade-b's socket.
    const port = await closedPort()
    const typed = r.json.fromLaptop.tunnel.replace('ssh -N -L 1234:', `ssh -F ${join(home, '.ssh', 'config')} -o ExitOnForwardFailure=yes -N -L ${port}:`)
    const held = execa('sh', ['-c', `exec ${typed}`], {reject: false})
    try {
      expect(await readFrom(port)).toBe('blade-b stub\n')
    } finally {
      held.kill('SIGTERM')
      await held
    }
  }, 60_000)

  it('vm debug forwards through blade-b\'s connection until Ctrl-C', async () => {
    const run = startShien(['vm', 'debug', '02', '--host', 'labblade', '--port', '0'], {home})
    let printed = ''
    run.stdout?.on('data', (chunk) => (printed += String(chunk)))
    try {
      for (const started = Date.now(); !/Forwarding localhost:\d+/.test(printed) && Date.now() - started < 30_000; ) await new Promise((r) => setTimeout(r, 100))
      const port = Number(/Forwarding localhost:(\d+)/.exec(printed)?.[1])
      expect(port, printed).toBeGreaterThan(0)
      expect(printed).toContain(`e195701-02 is running with a gdb stub.`)
      expect(await readFrom(port)).toBe('blade-b stub\n')
    } finally {
      run.kill('SIGINT')
      await run
    }
    expect(asked(a)).toEqual(['ie-virsh debug 02', 'shien blade hello'])
  }, 60_000)

  it('a slot on no blade keeps blade-a\'s NOT_DEFINED; without a cluster no other blade is asked', async () => {
    b.answer('ie-virsh list', list())
    const nowhere = await shien('undefine', '02', '--json')
    expect(nowhere.json?.error, nowhere.stdout).toMatchObject({code: 'NOT_DEFINED'})
    expect(nowhere.exitCode).toBe(6)
    expect(b.commands().filter((c) => c.includes('undefine'))).toEqual([])

    writeFileSync(join(b.dir, 'commands.log'), '')
    a.answer('blade hello', hello())
    for (const args of [['dumpxml', '02'], ['undefine', '02'], ['debug', '02', '--no-forward']]) {
      const r = await shien(...args, '--json')
      expect(r.json?.error, r.stdout).toMatchObject({code: 'NOT_DEFINED'})
    }
    expect(b.commands()).toEqual([])
  }, 60_000)
})

/** What a local port's listener sends, retried while the forward is being set up. */
async function readFrom(port: number): Promise<string> {
  for (let i = 0; ; i++) {
    const got = await new Promise<string | undefined>((resolve) => {
      let data = ''
      const socket = connect(port, '127.0.0.1')
      socket.on('data', (chunk) => (data += String(chunk)))
      socket.on('end', () => resolve(data))
      socket.on('error', () => resolve(undefined))
    })
    if (got !== undefined && got.length > 0) return got
    if (i >= 100) throw new Error(`nothing came from localhost:${port}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}
