/** Weak password checks against real hashes from mkpasswd and openssl, verified by the host's libxcrypt. */
import {describe, expect, it} from 'vitest'

import {verifyPasswords} from '../../../src/audit/crypt-verifier.js'
import {candidatesFor, classify, findWeakPasswords, parseShadow} from '../../../src/audit/passwords.js'
import {cryptHash} from '../../support/planted-images.js'

const lists = {builtin: ['vagrant', 'root', 'password', ''], admin: ['s3cret-course']}

describe('findWeakPasswords', () => {
  it('verifies yescrypt, sha512crypt, sha256crypt and md5crypt hashes, and leaves strong ones alone', async () => {
    const shadow = parseShadow([
      `root:${await cryptHash('yescrypt', 'root')}:19700::::::`, `vagrant:${await cryptHash('sha512crypt', 'vagrant')}:19700::::::`,
      `alice:${await cryptHash('sha256crypt', 'alice')}::::::`, `bob:${await cryptHash('md5crypt', 'password')}::::::`,
      `dave:${await cryptHash('yescrypt', 's3cret-course')}::::::`, `erin:${await cryptHash('yescrypt', 'Vagrant!2x9')}::::::`,
      'carol::19700::::::', 'svc:*::::::', 'nologin:!!::::::',
      `frank:!${await cryptHash('md5crypt', 'vagrant')}::::::`,
    ].join('\n'))
    const scan = await findWeakPasswords(shadow, lists)
    expect(scan.weak).toEqual([
      {user: 'carol', source: 'empty', password: '', scheme: 'none', locked: false},
      {user: 'root', source: 'builtin', password: 'root', scheme: 'yescrypt', locked: false},
      {user: 'vagrant', source: 'builtin', password: 'vagrant', scheme: 'sha512crypt', locked: false},
      {user: 'alice', source: 'username', password: 'alice', scheme: 'sha256crypt', locked: false},
      {user: 'bob', source: 'builtin', password: 'password', scheme: 'md5crypt', locked: false},
      {user: 'dave', source: 'admin-list', scheme: 'yescrypt', locked: false},
      {user: 'frank', source: 'builtin', password: 'vagrant', scheme: 'md5crypt', locked: true},
    ])
    expect(scan.unverified).toEqual([])
  })

  it('says which hashes libxcrypt could not check instead of calling them strong', async () => {
    const scan = await findWeakPasswords(parseShadow('old:$7$garbage:1::::::\n'), lists)
    expect(scan).toEqual({weak: [], unverified: [{user: 'old', scheme: 'scrypt'}]})
  })

  it('stops checking an account once a candidate matched', async () => {
    const hash = await cryptHash('sha512crypt', 'vagrant')
    const answers = await verifyPasswords([
      {group: 'a', hash, candidate: 'vagrant'}, {group: 'a', hash, candidate: 'vagrant'}, {group: 'b', hash, candidate: 'vagrant'},
      {group: 'b', hash, candidate: 'tab\tand\nnewline ünï'},
    ])
    expect(answers).toEqual([true, false, true, false])
  })
})

describe('classify and candidatesFor', () => {
  it('tells schemes, locked hashes and no-password fields apart', () => {
    expect(classify('$y$j9T$abc$def')).toEqual({kind: 'hash', hash: '$y$j9T$abc$def', scheme: 'yescrypt', locked: false})
    expect(classify('!!$6$s$h')).toMatchObject({kind: 'hash', scheme: 'sha512crypt', locked: true})
    expect(classify('abcdefghijklm')).toMatchObject({scheme: 'descrypt'})
    expect(['*', '!', '!!', '*LK*'].map((f) => classify(f).kind)).toEqual(['none', 'none', 'none', 'none'])
    expect(classify('').kind).toBe('empty')
  })

  it('tries the built-ins, the account name, then the admin list, each once', () => {
    expect(candidatesFor('root', lists).map((c) => `${c.source}:${c.password}`)).toEqual(['builtin:vagrant', 'builtin:root', 'builtin:password', 'empty:', 'admin-list:s3cret-course'])
    expect(candidatesFor('alice', lists)[4]).toEqual({password: 'alice', source: 'username'})
  })
})
