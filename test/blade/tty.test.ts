import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {SHIEN_BIN} from '../support/cli.js'
import {ensureLocalBlade, type LocalBlade} from '../support/local-blade.js'
import {makeBox, tempDir} from '../support/make-box.js'
import {tmuxTerminal} from '../support/tmux.js'

const SESSION = `shien-tty-${process.pid}`
let blade: LocalBlade
let home: string
let box: string
let cleanup: () => Promise<void>

const {tmux, waitFor} = tmuxTerminal(SESSION)

beforeAll(async () => {
  blade = await ensureLocalBlade()
  let dir: string
  ;({dir, cleanup} = await tempDir())
  box = await makeBox(dir, 'tty.box', {})
  home = mkdtempSync(join(tmpdir(), 'laptop-'))
  await execa('cp', ['-a', join(blade.laptopHome, '.ssh'), home])
  // Without the local blade's StrictHostKeyChecking yes, which would refuse the unknown key unasked.
  const config = readFileSync(join(home, '.ssh', 'config'), 'utf8').replaceAll(blade.laptopHome, home).replace(/^\s*StrictHostKeyChecking yes\n/m, '')
  writeFileSync(join(home, '.ssh', 'config'), config)
  writeFileSync(join(home, '.ssh', 'known_hosts'), '')
}, 900_000)

afterAll(async () => {
  await tmux(['kill-server'])
  await cleanup?.()
})

describe('on a terminal', () => {
  it('shows an unknown host key by fingerprint, asks, and remembers the answer', async () => {
    const command = ['env', `HOME=${home}`, 'SSH_AUTH_SOCK=', 'node', SHIEN_BIN, 'push', box, '--host', 'blade', '--slot', '05']
    // remain-on-exit keeps the pane readable after shien exits.
    await tmux(['new-session', '-d', '-s', SESSION, '-x', '150', '-y', '30', ...command, ';', 'set-option', '-t', SESSION, 'remain-on-exit', 'on'])
    const prompt = await waitFor(/Trust this host key/)
    expect(prompt).toContain(blade.hostKeyFingerprint)
    expect(readFileSync(join(home, '.ssh', 'known_hosts'), 'utf8')).toBe('')
    await tmux(['send-keys', '-t', SESSION, 'y', 'Enter'])
    await waitFor(/Error \(BAD_SLOT\): Slot 05 is outside your slots 01 to 04/)
    expect(readFileSync(join(home, '.ssh', 'known_hosts'), 'utf8')).toMatch(/^\[127\.0\.0\.1\]:2222 ssh-ed25519 /)
  }, 120_000)

  it('shows each stage as it runs: a spinner line with its elapsed time, then how long it took', async () => {
    const session = `${SESSION}-stages`
    const command = ['env', `HOME=${blade.laptopHome}`, 'SSH_AUTH_SOCK=', 'node', SHIEN_BIN, 'push', box, '--host', 'blade', '--slot', '02', '--name', 'tty']
    // A tmux server of its own (tmuxTerminal names the server after the session).
    const stages = tmuxTerminal(session)
    const waitOn = stages.waitFor
    await stages.tmux(['new-session', '-d', '-s', session, '-x', '150', '-y', '30', ...command, ';', 'set-option', '-t', session, 'remain-on-exit', 'on'])
    // The box's disk has no operating system: harden's appliance runs a while, then refuses it.
    const running = await waitOn(/Harden \S* ?\d+s/, 120_000)
    expect(running).toMatch(/^Upload {3}done in \d+\.\d s$/m)
    expect(running).toMatch(/^Convert {2}done in \d+\.\d s$/m)
    // The spinner's line is the last one, rewritten in place, never a new line per second.
    expect(running.trimEnd().split('\n').at(-1)).toMatch(/Harden/)
    expect(running.match(/Harden/g)).toHaveLength(1)
    await waitOn(/Error \(HARDEN_NO_OS\)/, 300_000)
    await stages.tmux(['kill-server'])
  }, 420_000)
})
