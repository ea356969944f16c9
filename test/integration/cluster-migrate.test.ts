import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {createServer, type Server} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {startClusterLab, type ClusterLab, type LabStudent} from '../support/cluster-lab.js'
import {runShien} from '../support/cli.js'
import {testBoxPath} from '../support/test-box.js'
import {until} from '../support/waiting.js'

// Several blades end to end, in the two-blade lab (test/support/cluster-lab.ts): two students
// push the Debian test box through blade-a and placement puts their VMs on different blades; a
// booted VM with a counter running in it is live-migrated by `shien admin migrate` and keeps
// counting; a migration the destination refuses leaves it running where it was; `admin drain`
// empties blade-b and `undrain` gives it back; with blade-b down, `admin recover` starts its VM
// on blade-a. libvirtd, qemu, sshd and the blade steps are the real ones; the laptop is the
// built CLI as each student, the admin the built CLI as root with blade-a's config.
describe('a VM moved between the blades of a cluster', () => {
  let lab: ClusterLab
  let cl1: LabStudent
  let cl2: LabStudent
  let box: string
  let adminHome: string

  const shien = (student: LabStudent, ...args: string[]) => runShien(args, {home: student.laptopHome})
  /** `sudo shien admin ...` on blade-a. */
  const admin = (...args: string[]) => runShien(['admin', ...args, '--config', lab.a.configPath, '--json'], {home: adminHome})
  const record = (vm: string) => JSON.parse(readFileSync(join(lab.storageRoot, 'cluster', 'slots', `${vm}.json`), 'utf8'))
  const state = async (blade: 'a' | 'b', vm: string) => String((await lab[blade].virsh('domstate', vm)).stdout).trim()
  const sorted = async () => {
    const d = await lab.domains()
    return {a: d.a.toSorted(), b: d.b.toSorted()}
  }

  /** The counter lines the VM's process wrote: `N UPTIME`, one a second (none yet: empty). */
  async function counter(): Promise<Array<{n: number; uptime: number}>> {
    const r = await shien(cl1, 'vm', 'ssh', '01', '--host', 'blade-a', '--', 'cat /dev/shm/counter 2>/dev/null || true')
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    return r.stdout.trim().split('\n').filter(Boolean).map((line) => {
      const [n, uptime] = line.split(' ')
      return {n: Number(n), uptime: Number(uptime)}
    })
  }

  beforeAll(async () => {
    ;[lab, box] = await Promise.all([startClusterLab({bladeShien: 'repository', memoryMiB: 384}), testBoxPath()])
    cl1 = lab.students['shien-cl1']
    cl2 = lab.students['shien-cl2']
    adminHome = mkdtempSync(join(tmpdir(), 'cluster-admin-'))
  }, 600_000)

  afterAll(async () => {
    await lab?.stop()
    rmSync(adminHome, {recursive: true, force: true})
  }, 180_000)

  it('puts two students\' pushes on different blades by placement, and vm list shows each with its blade', async () => {
    const first = await shien(cl1, 'push', box, '--host', 'blade-a', '--slot', '01', '--name', 'lab', '--json')
    expect(first.exitCode, first.stdout + first.stderr).toBe(0)
    expect(first.json.placement).toMatchObject({blade: 'blade-a', by: 'placement', passedOver: [{blade: 'blade-b', code: 'TIE'}]})
    const second = await shien(cl2, 'push', box, '--host', 'blade-a', '--slot', '01', '--name', 'lab', '--json')
    expect(second.exitCode, second.stdout + second.stderr).toBe(0)
    expect(second.json.placement).toMatchObject({blade: 'blade-b', by: 'placement', passedOver: [{blade: 'blade-a', code: 'BUSIER'}]})
    expect(await sorted()).toEqual({a: ['shien-cl1-01'], b: ['shien-cl2-01']})
    expect(record('shien-cl2-01')).toMatchObject({blade: 'blade-b'})

    for (const [student, blade] of [[cl1, 'blade-a'], [cl2, 'blade-b']] as const) {
      const list = await shien(student, 'vm', 'list', '--host', 'blade-a', '--json')
      expect(list.exitCode, list.stdout + list.stderr).toBe(0)
      expect(list.json.domains).toMatchObject([{slot: '01', name: `${student.account}-01`, blade, state: 'running'}])
    }
  }, 900_000)

  it('live-migrates a booted VM to blade-b: its counter goes on with no gap beyond the downtime, as its owner, on the same port', async () => {
    await until('the VM on blade-a answers over SSH', async () => (await shien(cl1, 'vm', 'ssh', '01', '--host', 'blade-a', '--', 'true')).exitCode === 0, 300_000)
    // The guest's own seconds (/proc/uptime), beside the count, written to memory only: a reboot would lose them.
    const loop = Buffer.from('i=0\nwhile :; do i=$((i+1)); echo "$i $(cut -d" " -f1 /proc/uptime)" >> /dev/shm/counter; sleep 1; done\n').toString('base64')
    const started = await shien(cl1, 'vm', 'ssh', '01', '--host', 'blade-a', '--', `echo ${loop} | base64 -d > /dev/shm/count.sh; setsid nohup sh /dev/shm/count.sh >/dev/null 2>&1 </dev/null &`)
    expect(started.exitCode, started.stderr).toBe(0)
    await until('the counter counts', async () => (await counter()).length >= 3, 60_000)
    const before = await shien(cl1, 'vm', 'list', '--host', 'blade-a', '--json')
    const port = before.json.domains[0].sshPort

    const moved = await admin('migrate', 'shien-cl1-01', '--to', 'blade-b')
    expect(moved.exitCode, moved.stdout + moved.stderr).toBe(0)
    expect(moved.json).toMatchObject({vm: 'shien-cl1-01', from: 'blade-a', to: 'blade-b', how: 'live'})
    console.log(`live migration blade-a -> blade-b: downtime ${moved.json.downtimeMs} ms, ${moved.json.elapsedMs} ms in all`)
    expect(await sorted()).toEqual({a: [], b: ['shien-cl1-01', 'shien-cl2-01']})
    expect(await state('b', 'shien-cl1-01')).toBe('running')
    expect(record('shien-cl1-01')).toMatchObject({blade: 'blade-b', from: 'blade-a'})
    // On blade-b the VM's qemu runs as its owner, and its forward is on blade-b's address, same port.
    const pid = readFileSync(join(lab.b.libvirtd.dir, 'run', 'qemu', 'shien-cl1-01.pid'), 'utf8').trim()
    expect(Number((await execa('ps', ['-o', 'uid=', '-p', pid])).stdout.trim())).toBe(cl1.uid)
    const xml = String((await lab.b.virsh('dumpxml', '--inactive', 'shien-cl1-01')).stdout)
    expect(xml).toContain(`hostfwd=tcp:127.0.0.2:${port}-:22`)

    // The same process, never restarted (/dev/shm would be empty after a boot), counting on.
    const seen = await counter()
    await new Promise((f) => setTimeout(f, 3000))
    const later = await counter()
    expect(later.length).toBeGreaterThan(seen.length)
    expect(later.map((l) => l.n)).toEqual(later.map((_l, i) => i + 1))
    const gaps = later.slice(1).map((l, i) => l.uptime - later[i].uptime)
    const worst = Math.max(...gaps)
    console.log(`the counter's longest gap: ${worst.toFixed(2)} s (libvirt's downtime ${moved.json.downtimeMs} ms)`)
    // One second a line, plus the downtime, plus a slow TCG second.
    expect(worst).toBeLessThan(1 + (moved.json.downtimeMs ?? 0) / 1000 + 2)

    const listed = await shien(cl1, 'vm', 'list', '--host', 'blade-a', '--json')
    expect(listed.json.domains).toMatchObject([{slot: '01', blade: 'blade-b', state: 'running', sshPort: port}])
  }, 600_000)

  it('leaves the VM running where it was when the destination refuses it, record unchanged', async () => {
    const port = (await shien(cl1, 'vm', 'list', '--host', 'blade-a', '--json')).json.domains[0].sshPort
    // Something on blade-a holds the VM's port on blade-a's address: its receiving qemu cannot forward it.
    const squatter: Server = createServer()
    await new Promise<void>((f) => squatter.listen(port, '127.0.0.1', f))
    try {
      const refused = await admin('migrate', 'shien-cl1-01', '--to', 'blade-a')
      expect(refused.exitCode).toBe(5)
      expect(refused.json.error.code).toBe('MIGRATION_FAILED')
      expect(refused.json.error.message).toContain('runs on at blade-b')
    } finally {
      await new Promise((f) => squatter.close(f))
    }
    expect(await sorted()).toEqual({a: [], b: ['shien-cl1-01', 'shien-cl2-01']})
    expect(await state('b', 'shien-cl1-01')).toBe('running')
    expect(record('shien-cl1-01')).toMatchObject({blade: 'blade-b', from: 'blade-a'})
    const n = (await counter()).length
    await until('the counter goes on at blade-b', async () => (await counter()).length > n, 30_000)
  }, 300_000)

  it('drains blade-b onto blade-a, live, and undrain gives blade-b back to placement', async () => {
    const drained = await admin('drain', 'blade-b')
    expect(drained.exitCode, drained.stdout + drained.stderr).toBe(0)
    expect(drained.json.failed).toEqual([])
    expect(drained.json.moved.map((m: {vm: string; to: string; how: string}) => `${m.vm} ${m.to} ${m.how}`).toSorted()).toEqual(['shien-cl1-01 blade-a live', 'shien-cl2-01 blade-a live'])
    expect(await sorted()).toEqual({a: ['shien-cl1-01', 'shien-cl2-01'], b: []})
    const facts = await cl1.ssh('blade-b', 'sudo', '-n', 'ie-virsh', 'facts', '--json')
    expect(JSON.parse(facts.stdout)).toMatchObject({blade: 'blade-b', drained: true, runningVms: 0})
    const n = (await counter()).length
    await until('the counter goes on at blade-a', async () => (await counter()).length > n, 30_000)

    const undrained = await admin('undrain', 'blade-b')
    expect(undrained.exitCode, undrained.stdout + undrained.stderr).toBe(0)
    expect(undrained.json).toMatchObject({blade: 'blade-b', was: {blade: 'blade-b', by: 'root'}})
    expect(JSON.parse((await cl1.ssh('blade-b', 'sudo', '-n', 'ie-virsh', 'facts', '--json')).stdout)).toMatchObject({drained: false})
  }, 600_000)

  it('moves a stopped VM by defining it on the other blade, where vm start then starts it', async () => {
    const stopped = await shien(cl2, 'vm', 'destroy', '01', '--host', 'blade-a', '--json')
    expect(stopped.exitCode, stopped.stdout + stopped.stderr).toBe(0)
    const back = await admin('migrate', 'shien-cl2-01', '--to', 'blade-b')
    expect(back.exitCode, back.stdout + back.stderr).toBe(0)
    expect(back.json).toMatchObject({vm: 'shien-cl2-01', from: 'blade-a', to: 'blade-b', how: 'defined'})
    expect(await sorted()).toEqual({a: ['shien-cl1-01'], b: ['shien-cl2-01']})
    expect(await state('b', 'shien-cl2-01')).toBe('shut off')
    expect(String((await lab.b.virsh('dumpxml', '--inactive', 'shien-cl2-01')).stdout)).toMatch(/hostfwd=tcp:127\.0\.0\.2:\d+-:22/)
    expect(record('shien-cl2-01')).toMatchObject({blade: 'blade-b', from: 'blade-a'})

    // blade-b can take it: vm start, asked of blade-a, starts it where it is defined.
    const started = await shien(cl2, 'vm', 'start', '01', '--host', 'blade-a', '--json')
    expect(started.exitCode, started.stdout + started.stderr).toBe(0)
    expect(started.json).toMatchObject({state: 'running', placement: {blade: 'blade-b', by: 'slot'}})
    expect(await state('b', 'shien-cl2-01')).toBe('running')
  }, 300_000)

  it('with blade-b down, recover starts its VM on blade-a, and refuses while blade-b answers', async () => {
    expect(await sorted()).toEqual({a: ['shien-cl1-01'], b: ['shien-cl2-01']})

    const answering = await admin('recover', 'blade-b', '--yes')
    expect(answering.json?.error?.code, answering.stdout).toBe('BLADE_ANSWERS')
    const unconfirmed = await admin('recover', 'blade-b')
    expect(unconfirmed.json?.error?.code, unconfirmed.stdout).toBe('NOT_CONFIRMED')
    expect(await sorted()).toEqual({a: ['shien-cl1-01'], b: ['shien-cl2-01']})

    // blade-b goes down: its sshd, its libvirtd and its VM.
    await lab.b.sshd.stop()
    await lab.b.libvirtd.stop()
    const list = await shien(cl2, 'vm', 'list', '--host', 'blade-a', '--json')
    expect(list.exitCode, list.stdout + list.stderr).toBe(0)
    expect(list.json.blades).toMatchObject([{name: 'blade-a', reachable: true}, {name: 'blade-b', reachable: false}])

    const recovered = await admin('recover', 'blade-b', '--yes')
    expect(recovered.exitCode, recovered.stdout + recovered.stderr).toBe(0)
    expect(recovered.json).toMatchObject({blade: 'blade-b', recovered: [{vm: 'shien-cl2-01', to: 'blade-a', started: true}], failed: []})
    expect(await state('a', 'shien-cl2-01')).toBe('running')
    expect(record('shien-cl2-01')).toMatchObject({blade: 'blade-a', from: 'blade-b'})
    const after = await shien(cl2, 'vm', 'list', '--host', 'blade-a', '--json')
    expect(after.json.domains).toMatchObject([{slot: '01', blade: 'blade-a', state: 'running'}])
    // blade-b stays drained until an admin has cleaned it up and undrains it.
    expect(readFileSync(join(lab.storageRoot, 'cluster', 'drained', 'blade-b.json'), 'utf8')).toContain('"blade":"blade-b"')
  }, 300_000)
})
