import {chmod, chown, mkdir, mkdtemp, readlink, rm, stat, symlink, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runProvision} from '../../src/admin/provision-command.js'
import {runShien} from '../support/cli.js'

// shien admin provision against the real filesystem, setfacl/getfacl and the system's groups.
const GROUP = 'shien-prov'
const MEMBERS = ['shien-pv1', 'shien-pv2', 'shien-pv3']
const signal = new AbortController().signal

async function ensureMember(name: string): Promise<{uid: number; gid: number}> {
  if ((await execa('id', ['-u', name], {reject: false})).exitCode !== 0) {
    const made = await execa('useradd', ['--no-create-home', '--shell', '/usr/sbin/nologin', name], {reject: false})
    if (made.exitCode !== 0 && made.exitCode !== 9) throw new Error(made.stderr)
  }
  await execa('usermod', ['--append', '--groups', GROUP, name])
  return {uid: Number((await execa('id', ['-u', name])).stdout), gid: Number((await execa('id', ['-g', name])).stdout)}
}

const acl = async (path: string) => (await execa('getfacl', ['--omit-header', '--absolute-names', path])).stdout

describe('shien admin provision', () => {
  let root: string
  let configPath: string
  const ids: Record<string, {uid: number; gid: number}> = {}
  const home = (account: string) => join(root, 'storage', 'users', account)
  const provisionAll = () => runProvision({configPath, groups: [GROUP], uid: 0, signal})

  beforeAll(async () => {
    await execa('groupadd', ['-f', GROUP])
    await execa('groupadd', ['-f', 'shien-admin'])
    for (const m of MEMBERS) ids[m] = await ensureMember(m)
    root = await mkdtemp('/tmp/shien-provision-')
    await mkdir(join(root, 'storage'), {mode: 0o755})
    configPath = join(root, 'config.json')
    await writeFile(configPath, JSON.stringify({storageRoot: join(root, 'storage'), adminGroup: 'shien-admin', qemuUser: 'libvirt-qemu'}), {mode: 0o644})
  })

  afterAll(async () => {
    if (root) await rm(root, {recursive: true, force: true})
  })

  it("creates every member's folders, owned by the member, 0700, with the admin ACL and none for qemu", async () => {
    const report = await provisionAll()
    expect(report.accounts).toEqual(MEMBERS)
    expect(report.created).toHaveLength(1 + 3 * MEMBERS.length)
    expect(report.problems).toEqual([])
    for (const m of MEMBERS) {
      for (const path of [home(m), join(home(m), 'incoming'), join(home(m), 'images')]) {
        const info = await stat(path)
        expect([info.uid, info.gid]).toEqual([ids[m].uid, ids[m].gid])
        expect(info.mode & 0o707).toBe(0o700)
        expect(await acl(path)).toContain('group:shien-admin:r-x')
      }
      expect(await acl(join(home(m), 'images'))).not.toContain('libvirt-qemu')
      expect(await acl(join(home(m), 'incoming'))).not.toContain('libvirt-qemu')
    }
  })

  it('changes nothing on a second run', async () => {
    const report = await provisionAll()
    expect([report.created, report.fixed, report.problems]).toEqual([[], [], []])
    expect(report.unchanged).toHaveLength(3 * MEMBERS.length)
  })

  it('repairs owner, mode and ACL, and leaves a symlink a student planted alone', async () => {
    const [pv1, pv2, pv3] = MEMBERS
    await chmod(home(pv1), 0o755)
    await execa('setfacl', ['-b', join(home(pv1), 'images')])
    // What older versions gave libvirt's shared qemu user, which every student's VM ran as.
    await execa('setfacl', ['-m', 'u:libvirt-qemu:--x', join(home(pv2), 'images')])
    await chown(join(home(pv2), 'images'), 0, 0)
    await rm(join(home(pv3), 'incoming'), {recursive: true})
    await symlink('/etc', join(home(pv3), 'incoming'))
    const etcBefore = [await stat('/etc'), await acl('/etc')]

    const report = await provisionAll()
    expect(report.fixed).toEqual([
      // chmod moves the ACL mask too, so the entries it hid are made effective again.
      {path: home(pv1), what: ['mode 0755 -> 0700', 'ACL + group:shien-admin:r-x']},
      {path: join(home(pv1), 'images'), what: ['ACL + group:shien-admin:r-x']},
      {path: join(home(pv2), 'images'), what: [`owner 0:0 -> ${ids[pv2].uid}:${ids[pv2].gid}`, 'ACL - user:libvirt-qemu']},
    ])
    expect(report.problems).toEqual([{account: pv3, path: join(home(pv3), 'incoming'), reason: expect.stringContaining('symlink')}])
    expect(report.created).toEqual([])
    // Nothing reached through the symlink changed, and the student's folders after it were not touched.
    const etcAfter = [await stat('/etc'), await acl('/etc')]
    expect([etcAfter[0].uid, etcAfter[0].mode, etcAfter[1]]).toEqual([(etcBefore[0] as {uid: number}).uid, (etcBefore[0] as {mode: number}).mode, etcBefore[1]])
    expect(await readlink(join(home(pv3), 'incoming'))).toBe('/etc')
    expect((await stat(join(home(pv2), 'images'))).uid).toBe(ids[pv2].uid)
    await rm(join(home(pv3), 'incoming'))
  })

  it('refuses to run as anyone but root', async () => {
    await expect(runProvision({configPath, groups: [GROUP], uid: ids['shien-pv1'].uid, signal})).rejects.toMatchObject({code: 'NOT_ROOT'})
  })

  it('runs as the shien command, with --json, and names an unknown group', async () => {
    const ok = await runShien(['admin', 'provision', '--config', configPath, '--group', GROUP, '--json'], {home: root})
    expect(ok.exitCode, ok.stderr).toBe(0)
    expect(ok.json).toMatchObject({groups: [GROUP], accounts: MEMBERS, created: [join(home('shien-pv3'), 'incoming')], problems: []})
    const unknown = await runShien(['admin', 'provision', '--config', configPath, '--group', 'no-such-group', '--json'], {home: root})
    expect(unknown.json.error).toMatchObject({code: 'NO_SUCH_GROUP'})
    expect(unknown.exitCode).toBe(2)
  })
})
