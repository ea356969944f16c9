import {execFileSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {shellQuote} from '../../../src/transport/remote-exec.js'
import {resolveSshTarget} from '../../../src/transport/ssh-target.js'

function home(config: string, files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'home-'))
  mkdirSync(join(dir, '.ssh'))
  writeFileSync(join(dir, '.ssh', 'config'), config.replaceAll('HOME', dir))
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), {recursive: true})
    writeFileSync(join(dir, name), text.replaceAll('HOME', dir))
  }
  return dir
}

/** What the real OpenSSH makes of the same file: the ground truth. */
function sshG(dir: string, ...args: string[]): Map<string, string> {
  const out = execFileSync('ssh', ['-G', '-F', join(dir, '.ssh', 'config'), ...args], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore']})
  return new Map(out.split('\n').filter(Boolean).map((line) => [line.slice(0, line.indexOf(' ')), line.slice(line.indexOf(' ') + 1)]))
}

describe('resolveSshTarget', () => {
  it('applies Host, HostName, Port, User and IdentityFile from ~/.ssh/config', () => {
    const dir = home('Host blade\n  HostName 127.0.0.1\n  Port 2222\n  User e195701\n  IdentityFile ~/.ssh/blade_key\n\nHost *\n  User nobody\n')
    expect(resolveSshTarget('blade', {home: dir})).toMatchObject({
      alias: 'blade',
      hostName: '127.0.0.1',
      port: 2222,
      user: 'e195701',
      identityFiles: [join(dir, '.ssh/blade_key')],
      identitiesOnly: false,
      identityAgent: 'SSH_AUTH_SOCK',
      userKnownHostsFiles: [join(dir, '.ssh/known_hosts'), join(dir, '.ssh/known_hosts2')],
      globalKnownHostsFiles: ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2'],
      strictHostKeyChecking: 'ask',
      hashKnownHosts: false,
      via: [],
    })
  })

  it('lets user@host:port on the command line win over the config', () => {
    const dir = home('Host blade\n  Port 2222\n  User e195701\n')
    const target = resolveSshTarget('k198584@blade:2200', {home: dir})
    expect([target.user, target.port, target.hostName]).toEqual(['k198584', 2200, 'blade'])
  })

  it('refuses something that is not a host, and a config OpenSSH refuses, with what ssh said', () => {
    expect(() => resolveSshTarget('blade; rm -rf ~', {home: home('')})).toThrow(/is not a host/)
    expect(() => resolveSshTarget('-oProxyCommand=sh', {home: home('')})).toThrow(/is not a host/)
    expect(() => resolveSshTarget('blade', {home: home('Host blade\n  Port 99999\n')})).toThrow(/Bad port '99999'/)
  })

  it('reads an Included file (globbed) and Match host blocks the way ssh -G does', () => {
    const dir = home('Include HOME/.ssh/conf.d/*.conf\nMatch host 10.1.*\n  User matched\n  StrictHostKeyChecking accept-new\n', {
      '.ssh/conf.d/blades.conf': 'Host blade1\n  HostName 10.1.0.7\n  Port 2201\n  ProxyJump gw\n  HashKnownHosts yes\n',
      '.ssh/conf.d/gw.conf': 'Host gw\n  HostName gw.example.ac.jp\n  User k198584\n  IdentityFile %d/.ssh/gw_%r\n  IdentitiesOnly yes\n  IdentityAgent ~/agent.sock\n',
      '.ssh/conf.d/ignored.txt': 'Host blade1\n  Port 9\n',
    })
    const target = resolveSshTarget('blade1', {home: dir})
    const real = sshG(dir, 'blade1')
    expect([target.hostName, String(target.port), target.user]).toEqual([real.get('hostname'), real.get('port'), real.get('user')])
    expect(target).toMatchObject({hostName: '10.1.0.7', port: 2201, user: 'matched', strictHostKeyChecking: 'accept-new', hashKnownHosts: true})
    expect(target.via).toHaveLength(1)
    expect(target.via[0]).toMatchObject({
      alias: 'gw', hostName: 'gw.example.ac.jp', user: 'k198584', port: 22, identitiesOnly: true,
      identityFiles: [join(dir, '.ssh/gw_k198584')], identityAgent: join(dir, 'agent.sock'), strictHostKeyChecking: 'ask', via: [],
    })
  })

  it('follows a ProxyJump chain hop by hop, each hop with its own config and its own ProxyJump', () => {
    const dir = home(
      'Host blade\n  HostName 10.0.0.5\n  ProxyJump admin@gw2:2022,ssh://gw3\nHost gw2\n  HostName 192.0.2.2\n  ProxyJump gw1\n' +
        'Host gw1\n  HostName 192.0.2.1\n  User jumper\nHost gw3\n  HostName 192.0.2.3\n  Port 2200\n',
    )
    const target = resolveSshTarget('blade', {home: dir})
    expect(target.via.map((hop) => `${hop.user}@${hop.hostName}:${hop.port}`)).toEqual([
      'jumper@192.0.2.1:22', // gw2's own ProxyJump comes first
      'admin@192.0.2.2:2022',
      `${sshG(dir, 'gw3').get('user')}@192.0.2.3:2200`,
    ])
    expect(target.via.every((hop) => hop.via.length === 0)).toBe(true)
  })

  it('lets -J replace the config\'s ProxyJump, and -J none turn it off', () => {
    const dir = home('Host blade\n  HostName 10.0.0.5\n  ProxyJump gw\nHost other\n  HostName 192.0.2.9\n')
    expect(resolveSshTarget('blade', {home: dir, jump: 'other'}).via.map((h) => h.hostName)).toEqual(['192.0.2.9'])
    expect(resolveSshTarget('blade', {home: dir, jump: 'none'}).via).toEqual([])
    expect(() => resolveSshTarget('blade', {home: dir, jump: 'gw;reboot'})).toThrow(/not a host/)
  })

  it('reads StrictHostKeyChecking as ssh does, no included (connect refuses to act on it)', () => {
    const dir = home('Host a\n  StrictHostKeyChecking yes\nHost b\n  StrictHostKeyChecking no\nHost c\n  IdentityAgent none\n  UserKnownHostsFile ~/kh %d/kh2\n  GlobalKnownHostsFile /etc/ssh/other\n')
    expect(resolveSshTarget('a', {home: dir}).strictHostKeyChecking).toBe('yes')
    expect(resolveSshTarget('b', {home: dir}).strictHostKeyChecking).toBe('no')
    expect(resolveSshTarget('c', {home: dir})).toMatchObject({identityAgent: 'none', userKnownHostsFiles: [join(dir, 'kh'), join(dir, 'kh2')], globalKnownHostsFiles: ['/etc/ssh/other']})
    const none = home('Host d\n  UserKnownHostsFile none\n  GlobalKnownHostsFile none\n')
    expect(resolveSshTarget('d', {home: none})).toMatchObject({userKnownHostsFiles: [], globalKnownHostsFiles: []})
  })

  it('refuses a ProxyCommand (shien runs no commands from the config) and a looping chain', () => {
    expect(() => resolveSshTarget('blade', {home: home('Host blade\n  ProxyCommand nc %h %p\n')})).toThrow(/ProxyCommand/)
    expect(() => resolveSshTarget('a', {home: home('Host a\n  ProxyJump b\nHost b\n  ProxyJump a\n')})).toThrow(/longer than 8 hops/)
  })
})

describe('shellQuote', () => {
  it('keeps plain words and quotes everything else so sh reads it back unchanged', () => {
    expect(shellQuote('--slot')).toBe('--slot')
    expect(shellQuote("it's $(reboot)")).toBe(`'it'\\''s $(reboot)'`)
    expect(shellQuote('')).toBe("''")
    expect(() => shellQuote('a\0b')).toThrow(/NUL/)
  })
})
