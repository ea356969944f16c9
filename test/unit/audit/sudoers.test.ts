import {describe, expect, it} from 'vitest'

import {nopasswdAccounts, parseGroups, readSudoers} from '../../../src/audit/sudoers.js'

const accounts = [
  {name: 'root', uid: 0, gid: 0, home: '/root'}, {name: 'vagrant', uid: 1000, gid: 1000, home: '/home/vagrant'},
  {name: 'alice', uid: 1001, gid: 1001, home: '/home/alice'}, {name: 'bob', uid: 1002, gid: 2000, home: '/home/bob'},
  {name: 'carol', uid: 1003, gid: 1003, home: '/home/carol'},
]
const groups = parseGroups('root:x:0:\n# comment\nops:x:2000:alice\nwheel:x:10:carol\n')

function source(files: Record<string, string>) {
  return {
    read: async (path: string) => files[path],
    glob: async () => [],
    list: async (dir: string) => Object.keys(files).filter((f) => f.startsWith(`${dir}/`)).map((f) => f.slice(dir.length + 1)),
  }
}

const rulesOf = (text: string) => Object.fromEntries([...nopasswdAccounts([{path: '/etc/sudoers', text}], accounts, groups)].map(([u, r]) => [u, r.map((x) => x.rule)]))

describe('sudoers', () => {
  it('follows includes and includedirs as sudo does, skipping names with a dot or a trailing ~', async () => {
    const files = await readSudoers(source({
      '/etc/sudoers': 'root ALL=(ALL) ALL\n@includedir /etc/sudoers.d\n#include /etc/sudoers.local\n',
      '/etc/sudoers.d/vagrant': 'vagrant ALL=(ALL) NOPASSWD: ALL\n',
      '/etc/sudoers.d/README.txt': 'carol ALL=(ALL) NOPASSWD: ALL\n',
      '/etc/sudoers.d/old~': 'carol ALL=(ALL) NOPASSWD: ALL\n',
      '/etc/sudoers.d/a-first': '@include ../sudoers.extra\n',
      '/etc/sudoers.extra': 'bob ALL=(ALL) NOPASSWD: ALL\n',
      '/etc/sudoers.local': 'alice ALL=(ALL) ALL\n',
    }))
    expect(files.map((f) => f.path)).toEqual(['/etc/sudoers', '/etc/sudoers.d/a-first', '/etc/sudoers.extra', '/etc/sudoers.d/vagrant', '/etc/sudoers.local'])
    expect([...nopasswdAccounts(files, accounts, groups).keys()].sort()).toEqual(['bob', 'vagrant'])
  })

  it('resolves %groups (members and primary group), #uids, aliases and ALL', () => {
    expect(rulesOf('%ops ALL=(ALL) NOPASSWD: ALL\n')).toEqual({alice: ['%ops ALL=(ALL) NOPASSWD: ALL'], bob: ['%ops ALL=(ALL) NOPASSWD: ALL']})
    expect(Object.keys(rulesOf('#1000 ALL = NOPASSWD: /usr/bin/apt\n'))).toEqual(['vagrant'])
    expect(Object.keys(rulesOf('User_Alias ADMINS = carol, %#2000\nADMINS ALL=(root) NOPASSWD: ALL\n')).sort()).toEqual(['alice', 'bob', 'carol'])
    expect(Object.keys(rulesOf('ALL ALL=(ALL) NOPASSWD: ALL\n'))).toHaveLength(accounts.length)
  })

  it('joins continuation lines, ignores comments and rules that still ask for a password', () => {
    expect(Object.keys(rulesOf('vagrant ALL=(ALL) \\\n  NOPASSWD: ALL\n'))).toEqual(['vagrant'])
    expect(rulesOf('# vagrant ALL=(ALL) NOPASSWD: ALL\nalice ALL=(ALL) ALL # NOPASSWD: later\n%wheel ALL=(ALL) PASSWD: ALL\n')).toEqual({})
  })

  it('counts Defaults !authenticate as passwordless sudo', () => {
    expect(Object.keys(rulesOf('Defaults:carol !authenticate\ncarol ALL=(ALL) ALL\n'))).toEqual(['carol'])
    expect(Object.keys(rulesOf('Defaults env_reset,!authenticate\n'))).toHaveLength(accounts.length)
  })
})
