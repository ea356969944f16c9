import {EventEmitter} from 'node:events'

import {execa} from 'execa'
import {describe, expect, it} from 'vitest'

import type {Connection} from '../../../src/transport/connect.js'
import {gdbFromLaptop, withLaptopSsh} from '../../../src/client/vm/laptop-view.js'
import {ieVirshArgs} from '../../../src/client/vm/plan.js'
import {attachConsole} from '../../../src/client/vm/pty-console.js'

/** An ssh2 channel stand-in: records writes and window changes, emits what a server would. */
class FakeChannel extends EventEmitter {
  written: Buffer[] = []
  windows: number[][] = []
  stderr = new EventEmitter()
  write(chunk: Buffer) {
    this.written.push(chunk)
    return true
  }
  setWindow(rows: number, cols: number) {
    this.windows.push([rows, cols])
  }
}

function fakeTerminal() {
  const stdin = Object.assign(new EventEmitter(), {
    isTTY: true,
    modes: [] as boolean[],
    setRawMode(raw: boolean) {
      this.modes.push(raw)
    },
    resume() {},
    pause() {},
  })
  const stdout = Object.assign(new EventEmitter(), {rows: 30, columns: 100, shown: [] as string[], write(chunk: Buffer) {
    this.shown.push(chunk.toString())
  }})
  return {stdin, stdout, term: 'xterm'}
}

describe('shien vm on the laptop side', () => {
  it('runs the console in a remote PTY of the local size, passes bytes both ways and forwards resizes', async () => {
    const channel = new FakeChannel()
    let command = ''
    let pty: unknown
    const connection = {
      client: {
        exec(cmd: string, opts: {pty: unknown}, cb: (e: Error | undefined, c: FakeChannel) => void) {
          command = cmd
          pty = opts.pty
          cb(undefined, channel)
        },
      },
    } as unknown as Connection
    const tty = fakeTerminal()
    const done = attachConsole(connection, ['sudo', '-n', 'ie-virsh', 'console', '1; id'], tty)
    await new Promise((r) => setImmediate(r))
    expect(command).toBe("sudo -n ie-virsh console '1; id'")
    expect(pty).toEqual({term: 'xterm', rows: 30, cols: 100})
    tty.stdin.emit('data', Buffer.from('ping\x1d'))
    channel.emit('data', Buffer.from('PING'))
    Object.assign(tty.stdout, {rows: 50, columns: 160})
    tty.stdout.emit('resize')
    channel.emit('exit', 0)
    channel.emit('close')
    expect(await done).toBe(0)
    expect(Buffer.concat(channel.written).toString()).toBe('ping\x1d')
    expect(tty.stdout.shown).toEqual(['PING'])
    expect(channel.windows).toEqual([[50, 160]])
    // Raw mode on for the session, and off again after it.
    expect(tty.stdin.modes).toEqual([true, false])
    expect(tty.stdin.listenerCount('data')).toBe(0)
  })

  it('refuses a console without a terminal before connecting', async () => {
    const tty = {...fakeTerminal(), stdin: Object.assign(new EventEmitter(), {isTTY: false, resume() {}, pause() {}})}
    await expect(attachConsole({} as Connection, ['true'], tty)).rejects.toMatchObject({code: 'NOT_A_TERMINAL'})
  })

  it('shows ssh and gdb commands as typed on the laptop, the login under the VM\'s host key alias', () => {
    const target = {alias: 'blade1', hostName: 'Blade1.IE.example', port: 22, userKnownHostsFiles: ['/home/s/.ssh/known_hosts'], identityFiles: ['/home/s/.ssh/id_ed25519'], identitiesOnly: false, identityAgent: 'SSH_AUTH_SOCK'} as never
    const plan = {target, naming: {bladeSpec: 'blade1', home: '/home/s'}}
    const alias = 'shien-e195701-01.blade1.ie.example'
    const login = `ssh -J blade1 -p 22001 -o HostKeyAlias=${alias} -i /home/s/.ssh/id_ed25519 vagrant@127.0.0.1`
    // ie-virsh list: the account is the list's; start: the account is the domain name's.
    expect(withLaptopSsh({account: 'e195701', domains: [{slot: '01', name: 'e195701-01', sshPort: 22001, ssh: 'ssh -p 22001 vagrant@127.0.0.1'}, {slot: '02'}]}, plan)).toEqual({
      account: 'e195701',
      domains: [{slot: '01', name: 'e195701-01', sshPort: 22001, ssh: login}, {slot: '02'}],
    })
    expect(withLaptopSsh({slot: '01', name: 'e195701-01', sshPort: 22001, ssh: 'ssh -p 22001 vagrant@127.0.0.1'}, plan).ssh).toBe(login)
    expect(gdbFromLaptop('/run/shien/debug/e195701/01.sock', 1234, {bladeSpec: 'blade1'})).toEqual({
      tunnel: 'ssh -N -L 1234:/run/shien/debug/e195701/01.sock blade1',
      gdb: "gdb -ex 'target remote localhost:1234'",
    })
  })

  it("names the blade in the gdb tunnel as shien reached it: user, port and --jump kept, in words OpenSSH takes", async () => {
    const socket = '/run/shien/debug/e195701/02.sock'
    const tunnel = (bladeSpec: string, jump?: string) => gdbFromLaptop(socket, 1234, {bladeSpec, jump}).tunnel
    // A cluster's other blade, at its HOST:PORT address with the first blade's user.
    expect(tunnel('e195701@blade2.example:2222')).toBe(`ssh -N -L 1234:${socket} -p 2222 e195701@blade2.example`)
    expect(tunnel('blade2', 'gw.example')).toBe(`ssh -N -L 1234:${socket} -J gw.example blade2`)
    expect(tunnel('blade2', 'none')).toBe(`ssh -N -L 1234:${socket} blade2`)
    expect(tunnel('[2001:db8::2]:2222')).toBe(`ssh -N -L 1234:${socket} -p 2222 2001:db8::2`)
    expect(tunnel('e195701@[2001:db8::2]')).toBe(`ssh -N -L 1234:${socket} e195701@2001:db8::2`)
    // What OpenSSH makes of each, read as a shell reads the line (ssh -G: no connection).
    const config = async (line: string) => {
      const r = await execa('sh', ['-c', `exec ${line.replace(/^ssh -N -L \S+/, 'ssh -F /dev/null -G')}`])
      return Object.fromEntries(r.stdout.split('\n').map((l) => l.split(' ')).filter(([k]) => ['user', 'hostname', 'port', 'proxyjump'].includes(k)).map(([k, ...v]) => [k, v.join(' ')]))
    }
    expect(await config(tunnel('e195701@blade2.example:2222'))).toMatchObject({user: 'e195701', hostname: 'blade2.example', port: '2222'})
    expect(await config(tunnel('blade2', 'gw.example'))).toMatchObject({hostname: 'blade2', port: '22', proxyjump: 'gw.example'})
    expect(await config(tunnel('[2001:db8::2]:2222'))).toMatchObject({hostname: '2001:db8::2', port: '2222'})
    expect(await config(tunnel('e195701@[2001:db8::2]'))).toMatchObject({user: 'e195701', hostname: '2001:db8::2', port: '22'})
  })

  it('passes an admin\'s --account on to ie-virsh', () => {
    const plan = {target: {} as never, naming: {bladeSpec: 'blade1', home: '/home/s'}, acceptNewHostKey: false}
    expect(ieVirshArgs(plan, ['start', '01'])).toEqual(['start', '01'])
    expect(ieVirshArgs({...plan, account: 'e195701'}, ['start', '01'])).toEqual(['start', '01', '--account', 'e195701'])
  })
})
