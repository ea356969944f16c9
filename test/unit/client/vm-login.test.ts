import {execFileSync} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {loginCommand, renderSshConfig, sshArgv, vmHostKeyAlias, vmLogin} from '../../../src/client/vm/vm-login.js'
import type {SshTarget} from '../../../src/transport/ssh-target.js'

const target = (more: Partial<SshTarget> = {}): SshTarget => ({
  alias: 'blade1', hostName: 'blade1.ie.example', port: 22, user: 'e195701',
  identityFiles: ['/home/s/.ssh/id_ed25519'], identitiesOnly: true, identityAgent: 'SSH_AUTH_SOCK',
  userKnownHostsFiles: ['/home/s/.ssh/known_hosts', '/home/s/.ssh/known_hosts2'], globalKnownHostsFiles: ['/etc/ssh/ssh_known_hosts'],
  strictHostKeyChecking: 'ask', hashKnownHosts: false, via: [], ...more,
})
const naming = {bladeSpec: 'blade1', home: '/home/s'}
const vm = {account: 'e195701', slot: '01', host: '127.0.0.1', port: 22001}
const dir = mkdtempSync(join(tmpdir(), 'vm-login-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

describe('the OpenSSH login to a VM through its blade', () => {
  it('names the VM shien-<account>-<slot>.<blade>: the HostName lowercased, the port when not 22', () => {
    expect(vmHostKeyAlias('e195701', '01', {hostName: 'Blade1.IE.example', port: 22})).toBe('shien-e195701-01.blade1.ie.example')
    expect(vmHostKeyAlias('e195701', '02', {hostName: '127.0.0.1', port: 2222})).toBe('shien-e195701-02.127.0.0.1-2222')
    expect(vmHostKeyAlias('e195701', '01', {hostName: 'fe80::1%eth0', port: 22})).toBe('shien-e195701-01.fe80--1-eth0')
  })

  it('renders the Host block students paste, which OpenSSH reads back to the same values', () => {
    const login = vmLogin(target({identityFiles: ['/home/s/My Keys/id_ed25519'], identityAgent: '/home/s/agent.sock'}), {...naming, jump: 'gw.example'}, vm)
    const text = renderSshConfig(login)
    expect(text).toBe([
      'Host shien-e195701-01.blade1.ie.example',
      '  HostName 127.0.0.1',
      '  Port 22001',
      '  User vagrant',
      '  ProxyJump gw.example,blade1',
      '  HostKeyAlias shien-e195701-01.blade1.ie.example',
      '  UserKnownHostsFile /home/s/.ssh/known_hosts',
      '  StrictHostKeyChecking yes',
      '  IdentityFile "/home/s/My Keys/id_ed25519"',
      '  IdentitiesOnly yes',
      '  IdentityAgent /home/s/agent.sock',
      '',
    ].join('\n'))
    const file = join(dir, 'config')
    writeFileSync(file, text)
    const g = execFileSync('ssh', ['-G', '-F', file, 'shien-e195701-01.blade1.ie.example'], {encoding: 'utf8'})
    for (const line of ['hostname 127.0.0.1', 'port 22001', 'user vagrant', 'proxyjump gw.example,blade1', 'hostkeyalias shien-e195701-01.blade1.ie.example',
      'userknownhostsfile /home/s/.ssh/known_hosts', 'stricthostkeychecking true', 'identityfile /home/s/My Keys/id_ed25519', 'identitiesonly yes', 'identityagent /home/s/agent.sock']) {
      expect(g.split('\n')).toContain(line)
    }
  })

  it('gives ssh the same options as arguments (an array, -F when shien reads a config of its own), the command after --', () => {
    const login = vmLogin(target({identitiesOnly: false}), {...naming, sshConfigFile: '/tmp/laptop/.ssh/config'}, {...vm, host: 'localhost'})
    const argv = sshArgv(login, ['uname', '-a'])
    expect(argv).toEqual([
      '-F', '/tmp/laptop/.ssh/config',
      '-o', 'HostName=127.0.0.1', '-o', 'Port=22001', '-o', 'User=vagrant', '-o', 'ProxyJump=blade1',
      '-o', 'HostKeyAlias=shien-e195701-01.blade1.ie.example', '-o', 'UserKnownHostsFile=/home/s/.ssh/known_hosts',
      '-o', 'StrictHostKeyChecking=yes', '-o', 'IdentityFile=/home/s/.ssh/id_ed25519',
      'shien-e195701-01.blade1.ie.example', '--', 'uname', '-a',
    ])
    expect(sshArgv(login)).not.toContain('--')
    // What OpenSSH makes of those arguments, as `ssh -G` shows it.
    const g = execFileSync('ssh', ['-G', ...sshArgv({...login, configFile: '/dev/null'})], {encoding: 'utf8'}).split('\n')
    expect(g).toEqual(expect.arrayContaining(['hostname 127.0.0.1', 'port 22001', 'proxyjump blade1', 'hostkeyalias shien-e195701-01.blade1.ie.example', 'stricthostkeychecking true']))
  })

  it('prints one command a person types, with the known_hosts file only when it is not the default', () => {
    const login = vmLogin(target(), naming, vm)
    expect(loginCommand(login, '/home/s')).toBe('ssh -J blade1 -p 22001 -o HostKeyAlias=shien-e195701-01.blade1.ie.example -i /home/s/.ssh/id_ed25519 vagrant@127.0.0.1')
    const other = vmLogin(target({userKnownHostsFiles: ['/home/s/work hosts']}), naming, vm)
    expect(loginCommand(other, '/home/s')).toContain("-o 'UserKnownHostsFile=/home/s/work hosts'")
  })
})
