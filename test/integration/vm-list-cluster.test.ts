import {existsSync} from 'node:fs'
import {chown, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {clusterPaths} from '../../src/config/storage-layout.js'
import {openDrainedBlades} from '../../src/privileged/drained-blades.js'
import {startClusterLab, type ClusterLab, type LabBladeName, type LabStudent} from '../support/cluster-lab.js'
import {REPO_ROOT, runShien, SHIEN_BIN} from '../support/cli.js'
import {tmuxTerminal} from '../support/tmux.js'

// `shien vm list` and the slot commands across the two-blade lab (test/support/cluster-lab.ts):
// the laptop runs the built CLI against blade-a only, learns the cluster from blade-a's hello
// (this repository's `shien blade hello`, bound in the lab's blade sessions) and reaches blade-b
// at its cluster address through the laptop's own SSH files. ie-virsh is the installed one.
describe('shien vm list and the slot commands across the blades of a cluster', () => {
  let lab: ClusterLab
  let cl1: LabStudent

  /** A tiny image in the student's slot, defined through that blade's sudo ie-virsh. */
  async function defineOn(blade: LabBladeName, student: LabStudent, slot: string): Promise<void> {
    const image = join(student.images, `${slot}.qcow2`)
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', image, '16M'])
    await chown(image, student.uid, student.gid)
    const record = join(student.images, `${slot}.json`)
    await writeFile(record, `${JSON.stringify({architecture: 'x86_64', firmware: 'bios'})}\n`, {mode: 0o644})
    await chown(record, student.uid, student.gid)
    const r = await student.ssh(blade, 'sudo', '-n', 'ie-virsh', 'define', slot, '--json')
    expect(r.exitCode, `${r.stdout}${r.stderr}`).toBe(0)
  }

  const shien = (student: LabStudent, ...args: string[]) => runShien(args, {home: student.laptopHome})

  beforeAll(async () => {
    lab = await startClusterLab({bladeShien: 'repository'})
    cl1 = lab.students['shien-cl1']
    await defineOn('blade-a', cl1, '01')
    await defineOn('blade-b', cl1, '02')
    expect(await lab.domains()).toEqual({a: ['shien-cl1-01'], b: ['shien-cl1-02']})
  }, 180_000)

  afterAll(async () => {
    await lab?.stop()
  }, 120_000)

  it("lists the student's VMs of both blades, each with its blade and port, asking only blade-a by name", async () => {
    const r = await shien(cl1, 'vm', 'list', '--host', 'blade-a', '--json')
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    expect(r.json.domains).toMatchObject([
      {slot: '01', name: 'shien-cl1-01', blade: 'blade-a', state: 'shut off'},
      {slot: '02', name: 'shien-cl1-02', blade: 'blade-b', state: 'shut off'},
    ])
    for (const d of r.json.domains) expect(d.sshPort).toBeGreaterThanOrEqual(42680)
    expect(r.json.domains[0].sshPort).not.toBe(r.json.domains[1].sshPort)
    expect(r.json.blades).toEqual([
      {name: 'blade-a', ssh: `127.0.0.1:${lab.a.sshd.port}`, reachable: true},
      {name: 'blade-b', ssh: `127.0.0.1:${lab.b.sshd.port}`, reachable: true},
    ])
    // The login line of blade-b's VM goes through blade-b, as its user (the address has no User in ~/.ssh/config).
    expect(r.json.domains[1].ssh).toContain(`shien-cl1@127.0.0.1:${lab.b.sshd.port}`)

    const human = await shien(cl1, 'vm', 'list', '--host', 'blade-a')
    expect(human.exitCode, human.stderr).toBe(0)
    expect(human.stdout).toMatch(/^SLOT\s+NAME\s+BLADE\s+STATE/)
    expect(human.stdout).toMatch(/02\s+shien-cl1-02\s+blade-b\s+shut off/)
    expect(human.stderr).toBe('')
  })

  it("shows the other student neither VM, on either blade", async () => {
    const r = await shien(lab.students['shien-cl2'], 'vm', 'list', '--host', 'blade-a', '--json')
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    expect(r.json.domains).toEqual([])
    expect(r.json.blades.map((b: {reachable: boolean}) => b.reachable)).toEqual([true, true])
  })

  it("vm stop, vm ssh, vm ssh-config, vm console, vm start, vm destroy and vm dumpxml of a slot on blade-b act on blade-b when the student names blade-a", async () => {
    const stopped = await shien(cl1, 'vm', 'stop', '02', '--host', 'blade-a', '--json')
    expect(stopped.exitCode, stopped.stdout + stopped.stderr).toBe(0)
    expect(stopped.json).toMatchObject({name: 'shien-cl1-02', outcome: 'not-running'})

    // vm ssh found it on blade-b: blade-a alone would have said NOT_DEFINED.
    const ssh = await shien(cl1, 'vm', 'ssh', '02', '--host', 'blade-a', '--json', '--', 'true')
    expect(ssh.json?.error, ssh.stdout + ssh.stderr).toMatchObject({code: 'VM_NOT_RUNNING'})
    expect(ssh.json.error.message).toContain('shien-cl1-02 is shut off')

    // vm ssh-config found it on blade-b too, and asked blade-b's shien for the keys a push records (there are none: it was never pushed).
    const config = await shien(cl1, 'vm', 'ssh-config', '02', '--host', 'blade-a', '--json')
    expect(config.json?.error, config.stdout + config.stderr).toMatchObject({code: 'HOST_KEYS_UNKNOWN'})
    expect(config.json.error.message).toContain('shien-cl1-02')

    const started = await shien(cl1, 'vm', 'start', '02', '--host', 'blade-a', '--json')
    expect(started.exitCode, started.stdout + started.stderr).toBe(0)
    expect(String((await lab.b.libvirtd.virsh('domstate', 'shien-cl1-02')).stdout).trim()).toBe('running')
    expect(started.json.ssh).toContain(`127.0.0.1:${lab.b.sshd.port}`)
    const destroyed = await shien(cl1, 'vm', 'destroy', '02', '--host', 'blade-a', '--json')
    expect(destroyed.exitCode, destroyed.stdout + destroyed.stderr).toBe(0)
    expect(String((await lab.b.libvirtd.virsh('domstate', 'shien-cl1-02')).stdout).trim()).toBe('shut off')
    expect(await lab.domains()).toEqual({a: ['shien-cl1-01'], b: ['shien-cl1-02']})

    // vm dumpxml prints blade-b's definition of it (its uuid is blade-b's domain's).
    const dumped = await shien(cl1, 'vm', 'dumpxml', '02', '--host', 'blade-a', '--json')
    expect(dumped.exitCode, dumped.stdout + dumped.stderr).toBe(0)
    expect(dumped.json).toMatchObject({name: 'shien-cl1-02', slot: '02'})
    const uuid = String((await lab.b.libvirtd.virsh('domuuid', 'shien-cl1-02')).stdout).trim()
    expect(dumped.json.xml).toContain(`<uuid>${uuid}</uuid>`)

    // vm console reaches blade-b's ie-virsh too: its refusal names the VM there (blade-a has none).
    const terminal = tmuxTerminal(`vmlist-console-${process.pid}`)
    try {
      const command = `cd ${REPO_ROOT} && HOME=${cl1.laptopHome} SSH_AUTH_SOCK= node ${SHIEN_BIN} vm console 02 --host blade-a; echo "EXIT=$?"; sleep 60`
      const opened = await terminal.tmux(['new-session', '-d', '-s', `vmlist-console-${process.pid}`, '-x', '160', '-y', '30', command])
      expect(opened.exitCode, String(opened.stderr)).toBe(0)
      const screen = await terminal.waitFor(/EXIT=\d+/, 60_000)
      expect(screen.replace(/\s+/g, ' ')).toContain('shien-cl1-02 is shut off')
    } finally {
      await terminal.tmux(['kill-server'])
    }

    // A slot defined on no blade keeps blade-a's answer.
    const nowhere = await shien(cl1, 'vm', 'stop', '03', '--host', 'blade-a', '--json')
    expect(nowhere.json?.error, nowhere.stdout).toMatchObject({code: 'NOT_DEFINED'})
    expect(nowhere.exitCode).not.toBe(0)
  }, 120_000)

  it('with blade-b down, lists blade-a\'s VM, reports blade-b unreachable with why, and exits 0', async () => {
    await lab.b.sshd.stop()
    try {
      const r = await shien(cl1, 'vm', 'list', '--host', 'blade-a', '--json')
      expect(r.exitCode, r.stdout + r.stderr).toBe(0)
      expect(r.json.domains).toMatchObject([{slot: '01', blade: 'blade-a'}])
      expect(r.json.domains).toHaveLength(1)
      expect(r.json.blades[0]).toEqual({name: 'blade-a', ssh: `127.0.0.1:${lab.a.sshd.port}`, reachable: true})
      expect(r.json.blades[1]).toMatchObject({name: 'blade-b', reachable: false})
      expect(r.json.blades[1].why).toMatch(/ECONNREFUSED|refused/i)

      const human = await shien(cl1, 'vm', 'list', '--host', 'blade-a')
      expect(human.exitCode).toBe(0)
      expect(human.stderr).toMatch(new RegExp(`Blade blade-b \\(127\\.0\\.0\\.1:${lab.b.sshd.port}\\) did not answer`))
      expect(human.stdout).toMatch(/01\s+shien-cl1-01\s+blade-a/)

      // The slot on blade-b cannot be reached: blade-a's own answer stands.
      const stop = await shien(cl1, 'vm', 'stop', '02', '--host', 'blade-a', '--json')
      expect(stop.json?.error).toMatchObject({code: 'NOT_DEFINED'})
    } finally {
      await lab.b.sshd.restart()
    }
    const back = await shien(cl1, 'vm', 'list', '--host', 'blade-a', '--json')
    expect(back.json.domains.map((d: {blade: string}) => d.blade)).toEqual(['blade-a', 'blade-b'])
  }, 120_000)

  it('with blade-a down, the command fails as before: the blade named must answer', async () => {
    await lab.a.sshd.stop()
    try {
      const r = await shien(cl1, 'vm', 'list', '--host', 'blade-a', '--json')
      expect(r.exitCode).not.toBe(0)
      expect(r.json.error).toBeDefined()
    } finally {
      await lab.a.sshd.restart()
    }
  }, 60_000)

  // The last act on slot 02: the tests above need it defined on blade-b.
  it('vm undefine of the slot on blade-b, named blade-a, undefines it on blade-b and gives its record back', async () => {
    const records = clusterPaths(lab.storageRoot)
    expect(JSON.parse(await readFile(records.record('shien-cl1', '02'), 'utf8'))).toMatchObject({blade: 'blade-b'})
    const r = await shien(cl1, 'vm', 'undefine', '02', '--host', 'blade-a', '--json')
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    expect(r.json).toMatchObject({name: 'shien-cl1-02', slot: '02', removed: []})
    expect(await lab.domains()).toEqual({a: ['shien-cl1-01'], b: []})
    // blade-b's ie-virsh released the record and the kept XML; blade-a's slot is untouched; the image stays.
    expect(existsSync(records.record('shien-cl1', '02'))).toBe(false)
    expect(existsSync(records.domainXml('shien-cl1', '02'))).toBe(false)
    expect(JSON.parse(await readFile(records.record('shien-cl1', '01'), 'utf8'))).toMatchObject({blade: 'blade-a'})
    expect(existsSync(join(cl1.images, '02.qcow2'))).toBe(true)
    const listed = await shien(cl1, 'vm', 'list', '--host', 'blade-a', '--json')
    expect(listed.json.domains.map((d: {slot: string}) => d.slot)).toEqual(['01'])
    // Undefined everywhere now: blade-a's NOT_DEFINED stands.
    const again = await shien(cl1, 'vm', 'undefine', '02', '--host', 'blade-a', '--json')
    expect(again.json?.error, again.stdout).toMatchObject({code: 'NOT_DEFINED'})
  }, 120_000)

  it('vm start of a stopped VM whose blade is drained starts it on the other blade, its definition moved there; --blade naming the drained one is refused', async () => {
    await defineOn('blade-b', cl1, '03')
    const drained = await openDrainedBlades(lab.storageRoot)
    await drained.drain('blade-b', 'test')
    try {
      const refused = await shien(cl1, 'vm', 'start', '03', '--host', 'blade-a', '--blade', 'blade-b', '--json')
      expect(refused.json?.error, refused.stdout + refused.stderr).toMatchObject({code: 'BLADE_CANNOT_TAKE'})
      expect(await lab.domains()).toEqual({a: ['shien-cl1-01'], b: ['shien-cl1-03']})

      const r = await shien(cl1, 'vm', 'start', '03', '--host', 'blade-a', '--json')
      expect(r.exitCode, r.stdout + r.stderr).toBe(0)
      expect(r.json).toMatchObject({name: 'shien-cl1-03', state: 'running', placement: {blade: 'blade-a', by: 'placement', movedFrom: 'blade-b'}})
      expect(r.json.placement.passedOver).toMatchObject([{blade: 'blade-b', code: 'DRAINED'}])
      expect((await lab.domains()).a.toSorted()).toEqual(['shien-cl1-01', 'shien-cl1-03'])
      expect((await lab.domains()).b).toEqual([])
      expect(String((await lab.a.virsh('domstate', 'shien-cl1-03')).stdout).trim()).toBe('running')
      expect(JSON.parse(await readFile(clusterPaths(lab.storageRoot).record('shien-cl1', '03'), 'utf8'))).toMatchObject({blade: 'blade-a'})

      // Running, it stays where it is; a stopped VM whose blade can take it is not moved.
      const destroyed = await shien(cl1, 'vm', 'destroy', '03', '--host', 'blade-a', '--json')
      expect(destroyed.exitCode, destroyed.stdout + destroyed.stderr).toBe(0)
      const again = await shien(cl1, 'vm', 'start', '03', '--host', 'blade-a', '--json')
      expect(again.json).toMatchObject({state: 'running', placement: {blade: 'blade-a', by: 'slot'}})
      expect(again.json.placement.movedFrom).toBeUndefined()
    } finally {
      await drained.undrain('blade-b')
    }
  }, 180_000)
})
