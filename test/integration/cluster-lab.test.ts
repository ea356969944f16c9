import {existsSync} from 'node:fs'
import {chown, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {HOST_CONFIG, LAB_STUDENTS, startClusterLab, type ClusterLab} from '../support/cluster-lab.js'

// The two-blade lab (test/support/cluster-lab.ts) is what it claims: a student's `sudo ie-virsh`
// over blade-b's sshd reaches blade-b's libvirtd and reads blade-b's config, over blade-a's the
// host's, the host's /etc/shien/config.json never changes, and the teardown leaves nothing.
// Runs the installed ie-virsh through the real sudo rule, but not the local blade (its sshd,
// accounts and storage are untouched).
describe('the two-blade test lab', () => {
  let lab: ClusterLab
  let hostConfig: Buffer
  const json = (r: {stdout: string}) => JSON.parse(r.stdout)

  beforeAll(async () => {
    hostConfig = await readFile(HOST_CONFIG)
    lab = await startClusterLab()
  })

  afterAll(async () => {
    await lab?.stop()
  })

  it("each blade's sessions read that blade's config; the host reads its own", async () => {
    const student = lab.students['shien-cl1']
    for (const blade of [lab.a, lab.b]) {
      const seen = await student.ssh(blade.name, 'cat', HOST_CONFIG)
      expect(seen.exitCode, seen.stderr).toBe(0)
      expect(JSON.parse(seen.stdout)).toEqual(blade.config)
    }
    expect(lab.a.config).toMatchObject({libvirtUri: 'qemu:///system', cluster: {self: 'blade-a'}})
    expect(lab.b.config).toMatchObject({libvirtUri: lab.b.libvirtd.uri, cluster: {self: 'blade-b'}})
    expect((lab.a.config.cluster as {blades: unknown}).blades).toEqual((lab.b.config.cluster as {blades: unknown}).blades)
    expect(await readFile(HOST_CONFIG)).toEqual(hostConfig)
  })

  it("a student's define over blade-b lands on blade-b's libvirtd only, and only blade-b lists it", async () => {
    const student = lab.students['shien-cl1']
    const image = join(student.images, '01.qcow2')
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', image, '64M'])
    await chown(image, student.uid, student.gid)
    // The slot's record, as harden leaves it: the student's file beside the image.
    const record = join(student.images, '01.json')
    await writeFile(record, `${JSON.stringify({architecture: 'x86_64', firmware: 'bios'})}\n`, {mode: 0o644})
    await chown(record, student.uid, student.gid)

    const defined = await student.ssh('blade-b', 'sudo', '-n', 'ie-virsh', 'define', '01', '--json')
    expect(defined.exitCode, `${defined.stdout}${defined.stderr}`).toBe(0)
    expect(json(defined)).toMatchObject({name: 'shien-cl1-01', state: 'shut off', image: {path: image}})

    expect(String((await lab.b.libvirtd.virsh('domstate', 'shien-cl1-01')).stdout).trim()).toBe('shut off')
    expect((await lab.a.virsh('domstate', 'shien-cl1-01')).exitCode).not.toBe(0)
    expect(await lab.domains()).toEqual({a: [], b: ['shien-cl1-01']})

    const onA = await student.ssh('blade-a', 'sudo', '-n', 'ie-virsh', 'list', '--json')
    expect(onA.exitCode, onA.stderr).toBe(0)
    expect(json(onA).domains).toEqual([])
    const onB = await student.ssh('blade-b', 'sudo', '-n', 'ie-virsh', 'list', '--json')
    expect(onB.exitCode, onB.stderr).toBe(0)
    expect(json(onB).domains).toMatchObject([{slot: '01', name: 'shien-cl1-01', state: 'shut off'}])
    // The other student sees none of it, on either blade.
    const other = await lab.students['shien-cl2'].ssh('blade-b', 'sudo', '-n', 'ie-virsh', 'list', '--json')
    expect(json(other).domains).toEqual([])

    expect(await readFile(HOST_CONFIG)).toEqual(hostConfig)
  })

  it('the teardown leaves nothing: no domain, sshd, second libvirtd, folder, mount or change to the host config', async () => {
    const pids = [lab.a.sshd.pid, lab.b.sshd.pid]
    const folders = [lab.dir, lab.b.libvirtd.dir]
    expect(await lab.b.sshd.processes()).toContain(lab.b.sshd.pid)
    await lab.stop()
    for (const pid of pids) expect(existsSync(`/proc/${pid}`)).toBe(false)
    expect(await lab.a.sshd.processes()).toEqual([])
    expect(await lab.b.sshd.processes()).toEqual([])
    for (const folder of folders) expect(existsSync(folder)).toBe(false)
    expect((await lab.b.libvirtd.virsh('version')).exitCode).not.toBe(0)
    expect((await lab.a.virsh('domstate', 'shien-cl1-01')).exitCode).not.toBe(0)
    expect(await readFile('/proc/self/mountinfo', 'utf8')).not.toContain(lab.dir)
    expect(await readFile(HOST_CONFIG)).toEqual(hostConfig)
    // The accounts stay, without the lab's shell and home.
    for (const account of LAB_STUDENTS) expect((await execa('getent', ['passwd', account])).stdout).toMatch(new RegExp(`:/home/${account}:/usr/sbin/nologin$`))
  })
})
