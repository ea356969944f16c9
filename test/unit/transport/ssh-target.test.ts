import {mkdirSync, mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {shellQuote} from '../../../src/transport/remote-exec.js'
import {resolveSshTarget} from '../../../src/transport/ssh-target.js'

function home(config: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'home-'))
  mkdirSync(join(dir, '.ssh'))
  writeFileSync(join(dir, '.ssh', 'config'), config)
  return dir
}

describe('resolveSshTarget', () => {
  it('applies Host, HostName, Port, User and IdentityFile from ~/.ssh/config', () => {
    const dir = home('Host blade\n  HostName 127.0.0.1\n  Port 2222\n  User e195701\n  IdentityFile ~/.ssh/blade_key\n\nHost *\n  User nobody\n')
    expect(resolveSshTarget('blade', {home: dir})).toEqual({
      alias: 'blade',
      hostName: '127.0.0.1',
      port: 2222,
      user: 'e195701',
      identityFiles: [join(dir, '.ssh/blade_key')],
      identitiesOnly: false,
    })
  })

  it('lets user@host:port on the command line win over the config', () => {
    const dir = home('Host blade\n  Port 2222\n  User e195701\n')
    const target = resolveSshTarget('k198584@blade:2200', {home: dir})
    expect([target.user, target.port, target.hostName]).toEqual(['k198584', 2200, 'blade'])
  })

  it('refuses something that is not a host, and a bad Port', () => {
    expect(() => resolveSshTarget('blade; rm -rf ~', {home: home('')})).toThrow(/is not a host/)
    expect(() => resolveSshTarget('blade', {home: home('Host blade\n  Port 99999\n')})).toThrow(/not a TCP port/)
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
