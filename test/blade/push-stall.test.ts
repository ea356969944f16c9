/**
 * A push over a link that goes silent during the blade's harden, as campus Wi-Fi does: the
 * laptop runs `shien push` inside a network namespace of its own, where the blade is a port on
 * the namespace's loopback, carried by a bridge to a Unix socket and from there to the local
 * blade's sshd. Once the blade hardens, nft drops every packet on that loopback: nothing is
 * closed, nothing arrives. The laptop must say within its keepalive bound (about 60 s) that the
 * connection was lost during harden (CONNECTION_LOST, exit 4), never a fault of the blade and
 * never a silent exit; once the blade's end of the link goes too, its step is gone and the slot
 * is as it was, with the whole upload kept for the re-run.
 */
import {copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {createServer, connect as tcpConnect, type Server, type Socket} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa, type ResultPromise} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {SHIEN_BIN} from '../support/cli.js'
import {ensureLocalBlade, type LocalBlade} from '../support/local-blade.js'
import {testBoxPath} from '../support/test-box.js'
import {clearSlot, definedDomains} from '../support/virsh.js'
import {processesOf, until} from '../support/waiting.js'

const SLOT = '04'
const NAME = 'stalled'
const NAMESPACE = `shien-stall-${process.pid}`
const LINK_PORT = 2222

/** Inside the namespace: 127.0.0.1:PORT carried to the Unix socket, one connection each. */
const BRIDGE = `
const net = require('node:net')
const [socketPath, port] = process.argv.slice(1)
net.createServer((laptop) => {
  const out = net.connect(socketPath)
  laptop.pipe(out).pipe(laptop)
  const close = () => { laptop.destroy(); out.destroy() }
  laptop.on('error', close)
  out.on('error', close)
}).listen(Number(port), '127.0.0.1', () => console.log('listening'))
`

let blade: LocalBlade
let box: string
let dir: string
let home: string
let joiner: Server
let bridge: ResultPromise | undefined
const links: Socket[] = []

const studentProcesses = (pattern: string) => processesOf(blade.account, pattern)

const inNamespace = (argv: string[], input?: string) => execa('ip', ['netns', 'exec', NAMESPACE, ...argv], {input})
const userDir = (sub: string) => join(blade.storageRoot, 'users', blade.account, sub)

beforeAll(async () => {
  blade = await ensureLocalBlade()
  box = await testBoxPath()
  await clearSlot(blade.account, SLOT)
  dir = mkdtempSync(join(tmpdir(), 'shien-stall-'))

  // Outside the namespace: the Unix socket joined to the blade's sshd.
  const socketPath = join(dir, 'blade.sock')
  joiner = createServer((inner) => {
    const sshd = tcpConnect(blade.port, blade.host)
    links.push(inner, sshd)
    inner.pipe(sshd).pipe(inner)
    inner.on('error', () => sshd.destroy())
    sshd.on('error', () => inner.destroy())
  })
  await new Promise<void>((resolve) => joiner.listen(socketPath, resolve))

  await execa('ip', ['netns', 'add', NAMESPACE])
  await inNamespace(['ip', 'link', 'set', 'lo', 'up'])
  bridge = execa('ip', ['netns', 'exec', NAMESPACE, 'node', '-e', BRIDGE, socketPath, String(LINK_PORT)], {reject: false})
  await new Promise<void>((resolve, reject) => {
    bridge!.stdout?.once('data', () => resolve())
    void bridge!.then((r) => reject(new Error(`the bridge ended: ${r.stderr}`)))
  })

  // The student's laptop, reaching the blade at the namespace's loopback under the blade's own key.
  home = join(dir, 'laptop')
  mkdirSync(join(home, '.ssh'), {recursive: true, mode: 0o700})
  copyFileSync(blade.identityFile, join(home, '.ssh', 'id_ed25519'))
  writeFileSync(join(home, '.ssh', 'known_hosts'), readFileSync(blade.knownHosts))
  writeFileSync(
    join(home, '.ssh', 'config'),
    `Host blade\n  HostName 127.0.0.1\n  Port ${LINK_PORT}\n  HostKeyAlias [${blade.host}]:${blade.port}\n  User ${blade.account}\n` +
      `  IdentityFile ${home}/.ssh/id_ed25519\n  IdentitiesOnly yes\n  UserKnownHostsFile ${home}/.ssh/known_hosts\n  StrictHostKeyChecking yes\n`,
    {mode: 0o600},
  )
}, 900_000)

afterAll(async () => {
  for (const socket of links) socket.destroy()
  joiner?.close()
  bridge?.kill()
  await execa('ip', ['netns', 'del', NAMESPACE], {reject: false})
  if (dir) rmSync(dir, {recursive: true, force: true})
  if (!blade) return
  await clearSlot(blade.account, SLOT)
  rmSync(join(userDir('incoming'), `${NAME}.box`), {force: true})
  rmSync(join(userDir('incoming'), `.${NAME}.box.slot`), {force: true})
})

describe('a push whose link goes silent during harden', () => {
  it('ends with CONNECTION_LOST within the keepalive bound; once the blade sees the link go, the slot is as it was and the upload is kept', async () => {
    const child = execa('ip', ['netns', 'exec', NAMESPACE, 'node', SHIEN_BIN, 'push', box, '--host', 'blade', '--slot', SLOT, '--name', NAME, '--no-start'], {
      cwd: home,
      env: {HOME: home, XDG_CONFIG_HOME: `${home}/.config`, SSH_AUTH_SOCK: ''},
      reject: false,
      stdin: 'ignore',
    })
    let silentAt = 0
    child.stderr?.on('data', (chunk: Buffer) => {
      if (!silentAt && chunk.toString().includes('Harden...')) {
        silentAt = -1
        // Into the appliance's boot, then the link goes silent both ways: nothing closed, nothing carried.
        setTimeout(() => {
          inNamespace(['nft', '-f', '-'], 'table inet stall {\n  chain out {\n    type filter hook output priority 0; policy drop;\n  }\n}\n').then(
            () => (silentAt = Date.now()),
            (error: unknown) => {
              console.error(error)
              child.kill()
            },
          )
        }, 3000)
      }
    })
    const result = await child
    const after = Date.now() - silentAt
    expect(silentAt, String(result.stderr)).toBeGreaterThan(0)
    expect(result.exitCode, String(result.stderr)).toBe(4)
    expect(String(result.stderr)).toContain('Error (CONNECTION_LOST): The connection to the blade was lost during shien blade harden')
    expect(String(result.stderr)).not.toMatch(/REMOTE_FAILED|UPLOAD_FAILED/)
    // Keepalives every 15 s, the fourth finding three unanswered: not before the first is due, not long after the bound.
    expect(after).toBeGreaterThan(15_000)
    expect(after).toBeLessThan(80_000)
    console.log(`silent link during harden noticed by the laptop after ${(after / 1000).toFixed(0)} s`)

    // The blade's end of the link goes (its sshd's keepalives would close it; here the joiner does).
    for (const socket of links) socket.destroy()
    await until('the blade\'s harden, appliance and slot lock are gone', async () => (await studentProcesses('blade harden|blade lock|guestfish|qemu-system')) === '', 30_000)
    expect(await definedDomains([blade.account])).not.toContain(`${blade.account}-${SLOT}`)
    expect(readdirSync(userDir('images')).filter((f) => f.startsWith(`${SLOT}.`))).toEqual([])
    // The whole upload stays for the re-run, which sends nothing again.
    expect(existsSync(join(userDir('incoming'), `${NAME}.box`))).toBe(true)
  }, 600_000)
})
