import {createHash} from 'node:crypto'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import type {ShienError} from '../../src/errors.js'
import {connect, type NewHostKey} from '../../src/transport/connect.js'
import {remoteExec} from '../../src/transport/remote-exec.js'
import {resolveSshTarget} from '../../src/transport/ssh-target.js'
import {runShien, SHIEN_BIN} from '../support/cli.js'
import {type JumpLab, PASSPHRASE, startJumpLab} from '../support/jump-lab.js'
import {makeBox} from '../support/make-box.js'
import {tmuxTerminal} from '../support/tmux.js'

let lab: JumpLab
let agent: {socket: string; pid: string} | undefined
const temps: string[] = []
/** A temporary folder removed when the tests end. */
const temp = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  temps.push(dir)
  return dir
}

/**
 * A laptop home whose ~/.ssh/config only Includes files under conf.d (a glob), where the
 * blade's ProxyJump is; `extra` follows (for what the included file leaves unset).
 */
function laptop(opts: {key?: string; extra?: string; knownHosts?: string} = {}): string {
  const home = temp('jump-laptop-')
  mkdirSync(join(home, '.ssh', 'conf.d'), {recursive: true, mode: 0o700})
  writeFileSync(join(home, '.ssh', 'config'), `Include ${home}/.ssh/conf.d/*.conf\n${opts.extra ?? ''}`)
  writeFileSync(
    join(home, '.ssh', 'conf.d', 'lab.conf'),
    `Host blade\n  HostName 127.0.0.1\n  Port ${lab.bladePort}\n  ProxyJump gw2\n` +
      `Host gw1\n  HostName 127.0.0.1\n  Port ${lab.gw1Port}\nHost gw2\n  HostName 127.0.0.1\n  Port ${lab.gw2Port}\n` +
      `Host *\n  User root\n  IdentityFile ${opts.key ?? lab.clientKey}\n`,
  )
  writeFileSync(join(home, '.ssh', 'known_hosts'), opts.knownHosts ?? lab.knownHosts)
  return home
}

const never = async (): Promise<boolean> => {
  throw new Error('asked about a host key that is known')
}

async function labOf(home: string, spec = 'blade', more: Partial<Parameters<typeof connect>[0]> = {}, jump?: string): Promise<string> {
  const conn = await connect({target: resolveSshTarget(spec, {home, jump}), confirmNewHostKey: never, ...more})
  try {
    return (await remoteExec(conn.client, ['sh', '-c', 'echo "$SHIEN_LAB"'])).stdout.trim()
  } finally {
    conn.close()
  }
}

beforeAll(async () => {
  lab = await startJumpLab()
}, 60_000)

afterAll(async () => {
  if (agent) await execa('kill', [agent.pid], {reject: false})
  await lab?.stop()
  for (const dir of temps) rmSync(dir, {recursive: true, force: true})
})

describe('ProxyJump', () => {
  it('cannot reach the blade directly: it is only reachable through the gateway', async () => {
    await expect(labOf(laptop(), 'blade', {}, 'none')).rejects.toMatchObject({code: 'SSH_CONNECT', message: expect.stringMatching(/ECONNREFUSED/)})
  })

  it('reaches the blade through the ProxyJump of an Included file and runs a command there', async () => {
    expect(await labOf(laptop())).toBe('blade')
  })

  it('goes through two hops (-J gw1,gw2), each with its own config', async () => {
    const before = readFileSync(lab.gw1Log, 'utf8').split('Accepted publickey').length
    expect(await labOf(laptop(), 'blade', {}, 'gw1,gw2')).toBe('blade')
    expect(readFileSync(lab.gw1Log, 'utf8').split('Accepted publickey').length).toBe(before + 1)
  })

  it('refuses a gateway whose host key is unknown when the user says no, and never reaches the blade', async () => {
    const known = lab.knownHosts.split('\n').filter((l) => !l.includes(`:${lab.gw2Port} `)).join('\n')
    const home = laptop({knownHosts: known})
    const asked: NewHostKey[] = []
    const refused = labOf(home, 'blade', {confirmNewHostKey: async (key) => (asked.push(key), false)})
    await expect(refused).rejects.toMatchObject({code: 'HOST_KEY_UNKNOWN'})
    expect(asked).toEqual([{host: `[127.0.0.1]:${lab.gw2Port}`, type: 'ssh-ed25519', fingerprint: lab.fingerprints.gw2}])
    expect(readFileSync(join(home, '.ssh', 'known_hosts'), 'utf8')).toBe(known)
  })

  it('adds a confirmed gateway key (hashed under HashKnownHosts) and does not ask again', async () => {
    const known = lab.knownHosts.split('\n').filter((l) => !l.includes(`:${lab.gw2Port} `)).join('\n')
    const home = laptop({knownHosts: known, extra: 'Host gw2\n  HashKnownHosts yes\n'})
    let asked = 0
    expect(await labOf(home, 'blade', {confirmNewHostKey: async () => (asked++, true)})).toBe('blade')
    expect(asked).toBe(1)
    const added = readFileSync(join(home, '.ssh', 'known_hosts'), 'utf8').slice(known.length)
    expect(added).toMatch(/^\|1\|[^ ]+ ssh-ed25519 /)
    expect(added).not.toContain('127.0.0.1')
    const {stdout} = await execa('ssh-keygen', ['-F', `[127.0.0.1]:${lab.gw2Port}`, '-f', join(home, '.ssh', 'known_hosts')])
    expect(stdout).toContain('ssh-ed25519')
    expect(await labOf(home)).toBe('blade')
  })

  it('refuses a changed gateway key, and an unknown one under StrictHostKeyChecking yes without asking', async () => {
    const wrong = lab.knownHosts.replace(new RegExp(`(\\[127\\.0\\.0\\.1\\]:${lab.gw2Port}) .*`), `$1 ${readFileSync(`${lab.clientKey}.pub`, 'utf8').split(' ').slice(0, 2).join(' ')}`)
    await expect(labOf(laptop({knownHosts: wrong}))).rejects.toMatchObject({code: 'HOST_KEY_CHANGED'})
    const known = lab.knownHosts.split('\n').filter((l) => !l.includes(`:${lab.gw2Port} `)).join('\n')
    const strict = laptop({knownHosts: known, extra: 'Host gw2\n  StrictHostKeyChecking yes\n'})
    const refused = await labOf(strict, 'blade', {confirmNewHostKey: async () => true}).catch((error: unknown) => error as ShienError)
    expect(refused).toMatchObject({code: 'HOST_KEY_UNKNOWN', message: expect.stringMatching(/StrictHostKeyChecking is yes .* which --accept-new-host-key does not overrule/)})
    // What to do instead, and not the flag that does not help.
    expect(refused.suggestions.join(' ')).toMatch(/add the key to known_hosts .*StrictHostKeyChecking accept-new/)
    expect(refused.suggestions.join(' ')).not.toContain('--accept-new-host-key')
  })

  it('adds an unknown gateway key without asking under StrictHostKeyChecking accept-new', async () => {
    const known = lab.knownHosts.split('\n').filter((l) => !l.includes(`:${lab.gw2Port} `)).join('\n')
    const home = laptop({knownHosts: known, extra: 'Host gw2\n  StrictHostKeyChecking accept-new\n'})
    expect(await labOf(home)).toBe('blade')
    expect(readFileSync(join(home, '.ssh', 'known_hosts'), 'utf8')).toContain(`[127.0.0.1]:${lab.gw2Port} ssh-ed25519 `)
  })

  it('does not act on StrictHostKeyChecking no: an unknown gateway key is still asked about and refused', async () => {
    const known = lab.knownHosts.split('\n').filter((l) => !l.includes(`:${lab.gw2Port} `)).join('\n')
    const home = laptop({knownHosts: known, extra: 'Host *\n  StrictHostKeyChecking no\n'})
    await expect(labOf(home, 'blade', {confirmNewHostKey: async () => false})).rejects.toMatchObject({code: 'HOST_KEY_UNKNOWN'})
  })

  it('looks a gateway up in known_hosts by its HostKeyAlias', async () => {
    const aliased = lab.knownHosts.replace(`[127.0.0.1]:${lab.gw2Port} `, 'labgw ')
    expect(await labOf(laptop({knownHosts: aliased, extra: 'Host gw2\n  HostKeyAlias labgw\n'}))).toBe('blade')
    await expect(labOf(laptop({knownHosts: aliased}), 'blade', {confirmNewHostKey: async () => false})).rejects.toMatchObject({code: 'HOST_KEY_UNKNOWN'})
  })

  it('reads GlobalKnownHostsFile as well as the user file', async () => {
    const global = join(temp('jump-global-'), 'ssh_known_hosts')
    writeFileSync(global, lab.knownHosts)
    const home = laptop({knownHosts: '', extra: `GlobalKnownHostsFile ${global}\n`})
    expect(await labOf(home)).toBe('blade')
    expect(readFileSync(join(home, '.ssh', 'known_hosts'), 'utf8')).toBe('')
  })
})

describe('keys', () => {
  beforeAll(async () => {
    const socket = join(temp('jump-agent-'), 'agent.sock')
    const {stdout} = await execa('ssh-agent', ['-a', socket, '-s'])
    agent = {socket, pid: /SSH_AGENT_PID=(\d+)/.exec(stdout)![1]}
    // The agent holds the key; on disk it is passphrase-protected (the macOS keychain case).
    await execa('ssh-add', [lab.clientKey], {env: {SSH_AUTH_SOCK: socket}})
  })

  it('with IdentitiesOnly yes, uses the agent key whose public half matches the IdentityFile, asking nothing', async () => {
    const home = laptop({key: lab.lockedKey, extra: 'Host *\n  IdentitiesOnly yes\n'})
    const conn = await connect({target: resolveSshTarget('blade', {home}), confirmNewHostKey: never, agentSocket: agent!.socket})
    conn.close()
    expect(conn.publicKey.split(' ').slice(0, 2).join(' ')).toBe(readFileSync(`${lab.lockedKey}.pub`, 'utf8').split(' ').slice(0, 2).join(' '))
  })

  it('with IdentitiesOnly yes, does not offer agent keys no IdentityFile names', async () => {
    const other = join(temp('jump-other-'), 'other')
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other])
    const home = laptop({key: other, extra: 'Host *\n  IdentitiesOnly yes\n'})
    await expect(connect({target: resolveSshTarget('blade', {home}), confirmNewHostKey: never, agentSocket: agent!.socket})).rejects.toThrow(/refused every key offered \(\S*other\)/)
  })

  it('uses the agent IdentityAgent names, and none when it says none', async () => {
    const home = laptop({key: lab.lockedKey, extra: `Host *\n  IdentitiesOnly yes\n  IdentityAgent ${agent!.socket}\n`})
    expect(await labOf(home)).toBe('blade')
    const without = laptop({key: lab.lockedKey, extra: 'Host *\n  IdentityAgent none\n'})
    await expect(labOf(without, 'blade', {agentSocket: agent!.socket})).rejects.toMatchObject({code: 'SSH_KEY_PASSPHRASE'})
  })

  it('opens a passphrase-protected key with the passphrase asked for, and refuses a wrong one', async () => {
    const home = laptop({key: lab.lockedKey})
    const asked: string[] = []
    expect(await labOf(home, 'blade', {askPassphrase: async (file) => (asked.push(file), PASSPHRASE)})).toBe('blade')
    // Once, though the gateway and the blade each log in with it.
    expect(asked).toEqual([lab.lockedKey])
    // The handshake's time limit does not run while the user types.
    const slow = async () => (await new Promise((f) => setTimeout(f, 4000)), PASSPHRASE)
    expect(await labOf(home, 'gw1', {askPassphrase: slow, timeoutMs: 3000})).toBe('gw1')
    await expect(labOf(home, 'blade', {askPassphrase: async () => 'wrong'})).rejects.toThrow(/No SSH key could be used .* Not used: \S*locked \(wrong passphrase, 3 tries\)/)
  })
})

describe('the CLI', () => {
  const SESSION = `shien-jump-${process.pid}`
  const {tmux, screen, waitFor} = tmuxTerminal(SESSION)
  afterAll(async () => {
    await tmux(['kill-server'])
  })

  it('asks for a key passphrase on a terminal without echoing it, and reaches the blade through the gateway', async () => {
    const home = laptop({key: lab.lockedKey})
    const command = ['env', `HOME=${home}`, 'SSH_AUTH_SOCK=', 'node', SHIEN_BIN, 'vm', 'list', '--host', 'blade']
    await tmux(['new-session', '-d', '-s', SESSION, '-x', '150', '-y', '30', ...command, ';', 'set-option', '-t', SESSION, 'remain-on-exit', 'on'])
    await waitFor(/Enter passphrase for key '.*locked'/)
    await tmux(['send-keys', '-t', SESSION, '-l', PASSPHRASE])
    // Typed and not yet entered: nothing of it on the screen, not even a mask.
    await new Promise((f) => setTimeout(f, 500))
    const typing = await screen()
    expect(typing).toMatch(/Enter passphrase for key '.*locked'/)
    expect(typing).not.toContain(PASSPHRASE)
    expect(typing).not.toMatch(/\*{5}/)
    await tmux(['send-keys', '-t', SESSION, 'Enter'])
    // One answer reaches the blade: a second question (for the blade's login after the
    // gateway's) would wait for an answer that never comes.
    const shown = await waitFor(/reached the lab blade/)
    expect(shown).not.toContain(PASSPHRASE)
    expect(shown).not.toMatch(/\*{5}/)
  }, 60_000)

  it('refuses a passphrase-protected key clearly when there is no terminal, and -J reaches through the gateway', async () => {
    const home = laptop({key: lab.lockedKey})
    const result = await runShien(['vm', 'list', '--host', 'blade', '--json'], {home})
    expect(result.exitCode).toBe(4)
    expect(result.json.error).toMatchObject({code: 'SSH_KEY_PASSPHRASE', suggestions: [expect.stringContaining(`ssh-add ${lab.lockedKey}`), expect.any(String)]})
    const through = await runShien(['vm', 'list', '--host', 'blade', '-J', 'gw1,gw2', '--json'], {home: laptop()})
    expect(through.json.error).toMatchObject({code: 'LAB_BLADE', message: expect.stringContaining('reached the lab blade')})
    const direct = await runShien(['vm', 'list', '--host', 'blade', '--jump', 'none', '--json'], {home: laptop()})
    expect(direct.json.error).toMatchObject({code: 'SSH_CONNECT'})
  }, 60_000)

  it('publishes a box over SFTP to a host behind a ProxyJump', async () => {
    const work = mkdtempSync(join(tmpdir(), 'jump-publish-'))
    try {
      const box = await makeBox(work, 'course.box')
      const home = laptop({extra: 'Host gw2\n  ProxyJump gw1\n'})
      const before = readFileSync(lab.gw1Log, 'utf8').split('Accepted publickey').length
      const run = await runShien(
        ['box', 'publish', box, '--name', 'os101/debian12', '--version', '2026.1.0', '--to', `sftp://gw2${work}/boxes`, '--base-url', 'https://blade.example/boxes', '--no-libvirt', '--json'],
        {home},
      )
      expect(run.exitCode, run.stderr).toBe(0)
      const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex')
      expect(sha(join(work, 'boxes/os101/debian12/2026.1.0/virtualbox.box'))).toBe(sha(box))
      expect(readFileSync(lab.gw1Log, 'utf8').split('Accepted publickey').length).toBe(before + 1)
    } finally {
      rmSync(work, {recursive: true, force: true})
    }
  }, 60_000)
})
