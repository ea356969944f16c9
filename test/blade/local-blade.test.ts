import {mkdtemp, readdir, readFile, readlink, rm, stat, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {loadBladeConfig} from '../../src/config/blade-config.js'
import {bladeSshArgs, ensureLocalBlade, type LocalBlade, REPO_ROOT} from '../support/local-blade.js'

let blade: LocalBlade
let scratch: string

beforeAll(async () => {
  blade = await ensureLocalBlade()
  scratch = await mkdtemp(join(tmpdir(), 'shien-local-blade-'))
})

afterAll(async () => {
  if (scratch) await rm(scratch, {recursive: true, force: true})
})

/** Runs a command on the blade as the laptop's student, with OpenSSH's client. */
function onBlade(command: string, laptop: 'student' | 'other' = 'student') {
  return execa('ssh', [...bladeSshArgs(blade, laptop), command], {reject: false, timeout: 30_000})
}

describe('local blade over real sshd', () => {
  it('lets each student log in with their own key, verifying the host key', async () => {
    const me = await onBlade('id -un')
    expect(me.stderr).toBe('')
    expect(me.exitCode).toBe(0)
    expect(me.stdout.trim()).toBe(blade.account)

    const other = await onBlade('id -un', 'other')
    expect(other.exitCode).toBe(0)
    expect(other.stdout.trim()).toBe(blade.otherAccount)
  })

  it('describes the host key it serves', async () => {
    const scan = await execa('ssh-keygen', ['-l', '-F', `[${blade.host}]:${blade.port}`, '-f', blade.knownHosts])
    expect(scan.stdout).toContain(blade.hostKeyFingerprint)
  })

  it('refuses a host that is not in known_hosts (no trust on first use)', async () => {
    const empty = join(scratch, 'known_hosts.empty')
    await writeFile(empty, '')
    const result = await execa(
      'ssh',
      ['-F', blade.sshConfig, '-o', `UserKnownHostsFile=${empty}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', blade.hostAlias, 'true'],
      {reject: false, timeout: 30_000},
    )
    expect(result.exitCode).toBe(255)
    expect(result.stderr).toMatch(/Host key verification failed/)
  })

  it("does not let one student's key log in as the other student", async () => {
    // `-l` goes before the host alias (after it, it would be part of the remote command).
    const args = bladeSshArgs(blade)
    const alias = args.pop()!
    const crossed = await execa('ssh', [...args, '-l', blade.otherAccount, alias, 'id -un'], {
      reject: false,
      timeout: 30_000,
    })
    expect(crossed.exitCode).toBe(255)
    expect(crossed.stdout).not.toContain(blade.otherAccount)
    expect(crossed.stderr).toMatch(/Permission denied/)
  })

  it("writes into the student's incoming/ over sftp", async () => {
    const name = `local-blade-sftp-${process.pid}.txt`
    const local = join(scratch, name)
    const remote = join(blade.storageRoot, 'users', blade.account, 'incoming', name)
    const content = `sftp from the laptop ${Date.now()}\n`
    await writeFile(local, content)
    const batch = join(scratch, 'sftp-batch')
    await writeFile(batch, `put ${local} ${remote}\nls -l ${remote}\n`)
    try {
      const sftp = await execa(
        'sftp',
        ['-F', blade.sshConfig, '-o', `UserKnownHostsFile=${blade.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-b', batch, blade.hostAlias],
        {reject: false, timeout: 30_000},
      )
      expect(sftp.stderr).not.toMatch(/denied|failure/i)
      expect(sftp.exitCode).toBe(0)
      expect(await readFile(remote, 'utf8')).toBe(content)
      const {uid} = await stat(remote)
      const owner = await execa('id', ['-u', blade.account])
      expect(uid).toBe(Number(owner.stdout))
    } finally {
      await rm(remote, {force: true})
    }
  })

  it("keeps a student out of the other student's storage, over ssh and sftp", async () => {
    const otherHome = join(blade.storageRoot, 'users', blade.otherAccount)
    const list = await onBlade(`ls ${otherHome}`)
    expect(list.exitCode).not.toBe(0)
    expect(list.stderr).toMatch(/Permission denied/)
    const read = await onBlade(`cat ${otherHome}/incoming/anything`)
    expect(read.exitCode).not.toBe(0)
    expect(read.stderr).toMatch(/Permission denied/)

    const batch = join(scratch, 'sftp-cross')
    await writeFile(batch, `put ${batch} ${otherHome}/incoming/cross.txt\n`)
    const sftp = await execa(
      'sftp',
      ['-F', blade.sshConfig, '-o', `UserKnownHostsFile=${blade.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-b', batch, blade.hostAlias],
      {reject: false, timeout: 30_000},
    )
    expect(sftp.exitCode).not.toBe(0)
  })

  it('lets admins read the images and no qemu user in, with the ACLs the layout expects', async () => {
    const home = join(blade.storageRoot, 'users', blade.account)
    const acl = await execa('getfacl', ['--omit-header', '--absolute-names', home, join(home, 'images')])
    expect(acl.stdout).not.toContain('libvirt-qemu')
    expect(acl.stdout).toContain(`group:${blade.adminGroup}:r-x`)
    expect(acl.stdout).toContain('other::---')
    expect(acl.stdout).not.toMatch(/^group::r/m)
  })

  it('allows sudo for ie-virsh and ie-docker only', async () => {
    const list = await onBlade('sudo -n -l')
    expect(list.exitCode).toBe(0)
    const commands = list.stdout
      .split(/may run the following commands on [^:]+:/)[1]
      ?.split('\n')
      .map((line) => line.trim())
      .filter(Boolean)
    expect(commands).toEqual(['(root) NOPASSWD: /usr/local/bin/ie-virsh, /usr/local/bin/ie-docker'])

    const allowed = await onBlade('sudo -n -l /usr/local/bin/ie-virsh')
    expect(allowed.exitCode).toBe(0)

    const id = await onBlade('sudo -n id')
    expect(id.exitCode).not.toBe(0)
    expect(id.stdout).not.toContain('uid=0')

    const shell = await onBlade('sudo -n /bin/sh -c id')
    expect(shell.exitCode).not.toBe(0)
    expect(shell.stdout).not.toContain('uid=0')
  })

  it('installs the blade side where students cannot change it', async () => {
    const writable = await onBlade(
      `find ${blade.installDir} /usr/local/bin/ie-virsh /usr/local/bin/shien /etc/sudoers.d/shien -writable -print -quit 2>/dev/null; echo end`,
    )
    expect(writable.stdout.trim()).toBe('end')
    const wrapper = await readFile('/usr/local/bin/ie-virsh', 'utf8')
    expect(wrapper).toContain(`${blade.installDir}/bin/ie-virsh.js`)
    const which = await onBlade('command -v shien')
    expect(which.stdout.trim()).toBe('/usr/local/bin/shien')
  })

  it('has a blade configuration that parses, readable by students', async () => {
    const remote = await onBlade(`cat ${blade.configFile}`)
    expect(remote.exitCode).toBe(0)
    const raw = JSON.parse(remote.stdout) as Record<string, unknown>
    expect(raw).toMatchObject({storageRoot: blade.storageRoot, domainType: 'qemu', libvirtUri: 'qemu:///system'})

    const config = loadBladeConfig(blade.configFile)
    expect(config.storageRoot).toBe(blade.storageRoot)
    expect(config.domainType).toBe('qemu')
    expect(config.sshPortPool).toEqual({from: 22000, to: 22099})
    expect(config.limits.groups[blade.usersGroup]).toEqual({debug: true})
    expect(config.listenAddress).toBe('127.0.0.1')
    expect(config.qemuUser).toBe('libvirt-qemu')
    expect(config.adminGroup).toBe(blade.adminGroup)
    expect(config.bladeCommand).toBe('shien')
  })

  it('answers on qemu:///system', async () => {
    const version = await execa('virsh', ['-c', blade.libvirtUri, 'version'], {reject: false, timeout: 30_000})
    expect(version.exitCode).toBe(0)
  })

  it('is idempotent: a second `up` exits 0 and leaves the running sshd and libvirtd as they were', async () => {
    const pidFile = join(blade.stateDir, 'sshd.pid')
    const before = (await readFile(pidFile, 'utf8')).trim()
    const libvirtd = async () => (await execa('pgrep', ['-x', 'libvirtd'], {reject: false})).stdout.trim()
    const libvirtdBefore = await libvirtd()
    const again = await execa('bash', ['scripts/local-blade.sh', 'up'], {cwd: REPO_ROOT, all: true, reject: false})
    expect(again.exitCode, again.all).toBe(0)
    // Nothing that runs was started again: the same sshd and libvirtd processes answer.
    expect((await readFile(pidFile, 'utf8')).trim()).toBe(before)
    expect(libvirtdBefore).not.toBe('')
    expect(await libvirtd()).toBe(libvirtdBefore)
    expect(JSON.parse(await readFile('/var/lib/shien-blade/blade.json', 'utf8'))).toEqual(blade)
    const me = await onBlade('id -un')
    expect(me.stdout.trim()).toBe(blade.account)
  })

  it('leaves no process holding its lock once `up` has returned (the daemons it starts do not inherit it)', async () => {
    const lock = join(blade.stateDir, '.lock')
    const holders: string[] = []
    for (const pid of await readdir('/proc')) {
      if (!/^\d+$/.test(pid)) continue
      const fds = await readdir(`/proc/${pid}/fd`).catch(() => [])
      for (const fd of fds) {
        const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')
        if (target === lock) holders.push(`${pid} ${await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')}`)
      }
    }
    expect(holders).toEqual([])
    // libvirtd and sshd run, so this also covers a run that started them.
    expect((await execa('pidof', ['libvirtd'], {reject: false})).exitCode).toBe(0)
  })
})
