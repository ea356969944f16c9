import {chmod, mkdtemp, rm, symlink, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {roleOf} from '../../../src/directory/directory.js'
import {readPasswordFile} from '../../../src/directory/password-file.js'
import {DEFAULT_BLADE_CONFIG, DEFAULT_LDAP} from '../../../src/config/blade-config.js'
import {loadTrustedConfig} from '../../../src/privileged/trusted-config.js'

const roles = {admin: 'shien-admin', instructor: ['teachers'], student: ['students']}

describe('roles and the directory settings', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shien-dir-'))
  })
  afterEach(() => rm(dir, {recursive: true, force: true}))

  it('gives the highest role the groups give, and none outside the role groups', () => {
    expect(roleOf(['students', 'shien-admin'], roles)).toBe('admin')
    expect(roleOf(['teachers', 'students'], roles)).toBe('instructor')
    expect(roleOf(['students'], roles)).toBe('student')
    expect(roleOf(['alumni'], roles)).toBeUndefined()
    expect(roleOf([], {...roles, student: 'anyone'})).toBe('student')
  })

  it('reads the bind password from a root-only file, first line only', async () => {
    const file = join(dir, 'pw')
    await writeFile(file, 'hunter2\n', {mode: 0o600})
    expect(await readPasswordFile(file)).toBe('hunter2')
    await chmod(file, 0o640)
    await expect(readPasswordFile(file)).rejects.toMatchObject({code: 'CONFIG_INVALID', message: expect.stringContaining('mode 0600 or 0400')})
    await chmod(file, 0o600)
    await symlink(file, join(dir, 'link'))
    await expect(readPasswordFile(join(dir, 'link'))).rejects.toMatchObject({code: 'CONFIG_INVALID'})
    await expect(readPasswordFile(join(dir, 'missing'))).rejects.toMatchObject({message: expect.stringContaining('ENOENT')})
  })

  it('fills LDAP defaults and refuses settings that cannot work', async () => {
    const path = join(dir, 'config.json')
    const ldap = {url: 'ldap://127.0.0.1:389', userBase: 'ou=people,dc=x', groupBase: 'ou=groups,dc=x'}
    await writeFile(path, JSON.stringify({ldap}), {mode: 0o644})
    expect(loadTrustedConfig(path).ldap).toEqual({...DEFAULT_LDAP, ...ldap})
    expect(loadTrustedConfig(path).limits).toEqual(DEFAULT_BLADE_CONFIG.limits)
    const bad: [object, RegExp][] = [
      [{ldap: {...ldap, url: 'http://x'}}, /ldap.url/],
      [{ldap: {...ldap, userFilter: '(objectClass=posixAccount'}}, /userFilter/],
      [{ldap: {...ldap, bindDn: 'cn=x'}}, /bindPasswordFile/],
      [{ldap: {...ldap, studentGroups: 'students'}}, /studentGroups/],
      [{limits: {groups: {kernel: {vms: 0}}}}, /limits.groups.kernel/],
      [{limits: {groups: {kernel: {templates: ['../x']}}}}, /templates/],
      [{listenAddress: 'everywhere'}, /listenAddress/],
      [{debugSocketDir: 'run/debug'}, /debugSocketDir/],
      [{qemuStateDir: '/var/lib/../tmp'}, /qemuStateDir/],
    ]
    for (const [config, message] of bad) {
      await writeFile(path, JSON.stringify(config), {mode: 0o644})
      expect(() => loadTrustedConfig(path)).toThrow(message)
    }
  })
})
