import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {connect} from '../../src/transport/connect.js'
import {resolveSshTarget} from '../../src/transport/ssh-target.js'
import {ensureLocalBlade, type LocalBlade} from '../support/local-blade.js'

let blade: LocalBlade
let agent: {socket: string; pid: string}
let home: string

beforeAll(async () => {
  blade = await ensureLocalBlade()
  const dir = mkdtempSync(join(tmpdir(), 'agent-'))
  const socket = join(dir, 'agent.sock')
  const {stdout} = await execa('ssh-agent', ['-a', socket, '-s'])
  agent = {socket, pid: /SSH_AGENT_PID=(\d+)/.exec(stdout)![1]}
  await execa('ssh-add', [blade.identityFile], {env: {SSH_AUTH_SOCK: socket}})
  // A laptop whose ~/.ssh/config names the blade but no key: only the agent can log in.
  home = mkdtempSync(join(tmpdir(), 'laptop-'))
  await execa('mkdir', ['-m', '0700', join(home, '.ssh')])
  writeFileSync(join(home, '.ssh', 'config'), `Host blade\n  HostName ${blade.host}\n  Port ${blade.port}\n  User ${blade.account}\n`)
  writeFileSync(join(home, '.ssh', 'known_hosts'), readFileSync(blade.knownHosts))
}, 900_000)

afterAll(async () => {
  if (agent) await execa('kill', [agent.pid], {reject: false})
})

describe('ssh-agent', () => {
  it('logs in with the agent key, and reports that key as the one to install in the VM', async () => {
    const conn = await connect({
      target: resolveSshTarget('blade', {home}),
      knownHostsPath: join(home, '.ssh', 'known_hosts'),
      confirmNewHostKey: async () => false,
      agentSocket: agent.socket,
    })
    conn.close()
    const agentKey = readFileSync(`${blade.identityFile}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ')
    expect(conn.publicKey.split(/\s+/).slice(0, 2).join(' ')).toBe(agentKey)
  })

  it('without the agent and without a key file, says how to get a key', async () => {
    await expect(
      connect({
        target: resolveSshTarget('blade', {home}),
        knownHostsPath: join(home, '.ssh', 'known_hosts'),
        confirmNewHostKey: async () => false,
      }),
    ).rejects.toThrow(/No SSH key to log in to blade with/)
  })

  it('skips an encrypted key file and suggests ssh-add', async () => {
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'secret phrase', '-f', join(home, '.ssh', 'id_ed25519')])
    const attempt = connect({
      target: resolveSshTarget('blade', {home}),
      knownHostsPath: join(home, '.ssh', 'known_hosts'),
      confirmNewHostKey: async () => false,
    })
    const error = await attempt.catch((e: {suggestions: string[]}) => e)
    expect((error as {suggestions: string[]}).suggestions[0]).toMatch(/ssh-add .*id_ed25519/)
  })
})
