import {chmod, chown, mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {createServer} from 'node:net'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {LdapDirectory} from '../../src/directory/ldap-directory.js'
import {ExitCode} from '../../src/errors.js'
import {DEFAULT_LDAP, type LdapConfig} from '../../src/config/blade-config.js'
import {main} from '../../src/virsh/main.js'
import {ensureSlapd, group, person, replaceEntries, type TestDirectory} from '../support/slapd.js'
import {closedPort, ensureUser} from '../support/system.js'

// Accounts, groups and roles from a real OpenLDAP slapd; ie-virsh against the real libvirtd.
const URI = 'qemu:///system'
const STUDENT = 'shien-lt1'
const INSTRUCTOR = 'shien-lt2'
const ADMIN = 'shien-la1'
const ROLELESS = 'shien-lx1'
const ACCOUNTS = [STUDENT, INSTRUCTOR, ADMIN, ROLELESS]
const signal = new AbortController().signal

describe('accounts, groups and roles from LDAP (real slapd)', () => {
  let dir: TestDirectory
  let ldap: LdapConfig
  let root: string
  const uid: Record<string, number> = {}

  /** The directory's uidNumbers are the system's, as NSS and LDAP agree on a real blade. */
  const entries = (studentUid?: number) =>
    [
      ...ACCOUNTS.map((a) => person(a, a === STUDENT ? (studentUid ?? uid[a]) : uid[a], 7000)),
      group('students', 7001, [STUDENT, INSTRUCTOR]),
      group('os-course', 7002, [STUDENT]),
      group('teachers', 7003, [INSTRUCTOR]),
      group('shien-admin', 7004, [ADMIN]),
      group('alumni', 7000, []),
    ].join('\n')

  async function run(account: string, ldapConfig: Partial<LdapConfig> | undefined, ...argv: string[]) {
    const config = {
      storageRoot: root,
      libvirtUri: URI,
      domainType: 'qemu',
      listenAddress: '127.0.0.1',
      sshPortPool: {from: 42640, to: 42649},
      adminGroup: 'shien-admin',
      limits: {default: {vms: 2, vcpus: 1, memoryMiB: 64, debug: false}, groups: {'os-course': {vms: 4, debug: true}}},
      ...(ldapConfig ? {ldap: {...ldap, ...ldapConfig}} : {}),
    }
    await writeFile(join(root, 'config.json'), JSON.stringify(config), {mode: 0o644})
    let out = ''
    const code = await main([...argv, '--json'], {
      configPath: join(root, 'config.json'),
      env: {SUDO_UID: String(uid[account])},
      stdout: (t) => (out += t),
      stderr: () => undefined,
    })
    return {code, body: JSON.parse(out)}
  }

  beforeAll(async () => {
    dir = await ensureSlapd()
    for (const account of ACCOUNTS) uid[account] = await ensureUser(account)
    await replaceEntries(entries())
    ldap = {
      ...DEFAULT_LDAP,
      url: dir.url,
      bindDn: dir.serviceDn,
      bindPasswordFile: dir.servicePasswordFile,
      userBase: dir.peopleBase,
      groupBase: dir.groupsBase,
      instructorGroups: ['teachers'],
      studentGroups: ['students'],
    }
    root = await mkdtemp('/tmp/shien-ldap-')
    await chmod(root, 0o755)
    for (const account of ACCOUNTS) {
      await mkdir(join(root, 'users', account, 'images'), {recursive: true, mode: 0o700})
      await chown(join(root, 'users', account), uid[account], uid[account])
    }
  })

  afterAll(async () => {
    if (root) await rm(root, {recursive: true, force: true})
  })

  describe('the directory', () => {
    const directory = () => new LdapDirectory(ldap, 'shien-admin')

    it('gives each account its groups (primary one included) and its highest role', async () => {
      const student = await directory().standing(STUDENT, {signal})
      expect(student).toEqual({entry: {account: STUDENT, uid: uid[STUDENT], gid: 7000, groups: ['alumni', 'os-course', 'students']}, role: 'student'})
      expect((await directory().standing(INSTRUCTOR, {signal})).role).toBe('instructor')
      expect((await directory().standing(ADMIN, {signal})).role).toBe('admin')
      expect(await directory().standing(ROLELESS, {signal})).toMatchObject({entry: {groups: ['alumni']}, role: undefined})
      expect(await directory().standing('nobody-here', {signal})).toEqual({})
    })

    it('escapes what it is given: filter syntax in a name matches nothing', async () => {
      for (const name of ['*', `${STUDENT})(uid=*`, 'shien-l*', `*)(|(uid=*`]) {
        expect(await directory().standing(name, {signal})).toEqual({})
      }
    })

    it('lists the members of a group', async () => {
      const members = await directory().members('students', {signal})
      expect(members.map((m) => m.account)).toEqual([STUDENT, INSTRUCTOR])
      // Primary-group members count too.
      expect((await directory().members('alumni', {signal})).map((m) => m.account)).toEqual(ACCOUNTS.slice().sort())
      await expect(directory().members('no-such-group', {signal})).rejects.toMatchObject({code: 'NO_SUCH_GROUP'})
    })

    it('fails closed when the server is down or refuses the bind, without the password in the message', async () => {
      const down = new LdapDirectory({...ldap, url: `ldap://127.0.0.1:${await closedPort()}`, timeoutMs: 2000}, 'shien-admin')
      await expect(down.standing(STUDENT, {signal})).rejects.toMatchObject({code: 'DIRECTORY_UNAVAILABLE', message: expect.stringContaining('ECONNREFUSED')})
      const wrongFile = join(root, 'wrong.password')
      await writeFile(wrongFile, 'not-the-password\n', {mode: 0o600})
      const refused = new LdapDirectory({...ldap, bindPasswordFile: wrongFile}, 'shien-admin')
      const error = await refused.standing(STUDENT, {signal}).catch((e: Error) => e)
      expect(error).toMatchObject({code: 'DIRECTORY_UNAVAILABLE', message: expect.stringContaining('invalid credentials')})
      expect(JSON.stringify(error)).not.toContain('not-the-password')
    })

    it('refuses a password file others can read', async () => {
      const loose = join(root, 'loose.password')
      await writeFile(loose, 'x', {mode: 0o644})
      await chmod(loose, 0o644)
      await expect(new LdapDirectory({...ldap, bindPasswordFile: loose}, 'shien-admin').standing(STUDENT, {signal})).rejects.toMatchObject({
        code: 'CONFIG_INVALID',
        message: expect.stringContaining('mode 0600'),
      })
    })
  })

  describe('ie-virsh with the directory', () => {
    it("takes the limits from the account's groups: the most generous one wins", async () => {
      const student = await run(STUDENT, {}, 'list')
      expect(student.body).toMatchObject({account: STUDENT, role: 'student', limits: {vms: 4, debug: true}})
      const instructor = await run(INSTRUCTOR, {}, 'list')
      expect(instructor.body).toMatchObject({role: 'instructor', limits: {vms: 2, debug: false}})
      expect((await run(INSTRUCTOR, {}, 'debug', '01')).body.error.code).toBe('DEBUG_NOT_ALLOWED')
    })

    it('gives an account without a role nothing, and names the reason', async () => {
      const r = await run(ROLELESS, {}, 'list')
      expect(r).toMatchObject({code: ExitCode.refused, body: {error: {code: 'NO_ROLE'}}})
      expect(r.body.error.message).toContain('no role on the blades')
    })

    it('makes admins from the directory group, not from the Unix one', async () => {
      expect((await run(ADMIN, {}, 'list', '--account', STUDENT)).body).toMatchObject({account: STUDENT, role: 'admin', limits: {vms: 4}})
      expect((await run(STUDENT, {}, 'list', '--account', INSTRUCTOR)).body.error.code).toBe('NOT_ADMIN')
      // Without LDAP, the same account is no admin: it is not in the Unix group.
      expect((await run(ADMIN, undefined, 'list', '--account', STUDENT)).body.error.code).toBe('NOT_ADMIN')
    })

    it('refuses an account whose directory uid is not the caller\'s', async () => {
      await replaceEntries(entries(64_999))
      try {
        expect((await run(STUDENT, {}, 'list')).body.error.code).toBe('ACCOUNT_MISMATCH')
      } finally {
        await replaceEntries(entries())
      }
    })

    it('fails closed when LDAP is down: a clear error, and libvirt untouched', async () => {
      // The directory's accounts' domains: the blade's tests define theirs on the same libvirtd meanwhile.
      const domains = async () => (await execa('virsh', ['-c', URI, 'list', '--all', '--name'])).stdout.split('\n').filter((n) => ACCOUNTS.some((a) => n.startsWith(`${a}-`)))
      const before = await domains()
      for (const argv of [['list'], ['define', '01'], ['start', '01']]) {
        const r = await run(STUDENT, {url: `ldap://127.0.0.1:${await closedPort()}`, timeoutMs: 2000}, ...argv)
        expect(r).toMatchObject({code: ExitCode.remote, body: {error: {code: 'DIRECTORY_UNAVAILABLE'}}})
        expect(r.body.error.message).toContain('Without it no rights can be granted')
      }
      expect(await domains()).toEqual(before)
    })
  })
})
