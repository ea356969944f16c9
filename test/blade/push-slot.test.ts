/**
 * One push per slot, and a push whose laptop or session goes during convert or harden, or that
 * is stopped with Ctrl-C while vagrant package runs, on the local blade:
 * two pushes to one slot started together (one refused with SLOT_BUSY naming the other); the
 * student's sshd session killed during harden (the blade's harden and its appliance gone within
 * seconds, the staged files removed, the slot as it was); and a laptop that vanished while the
 * blade finished harden (the re-run sends nothing and takes the hardened image as it is).
 */
import {existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {hostname, tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runShien, startShien} from '../support/cli.js'
import {ensureLocalBlade, type LocalBlade} from '../support/local-blade.js'
import {testBoxPath} from '../support/test-box.js'
import {clearSlot, definedDomains} from '../support/virsh.js'
import {processesOf, until} from '../support/waiting.js'

let blade: LocalBlade
let box: string

const studentProcesses = (pattern: string) => processesOf(blade.account, pattern)

const images = () => join(blade.storageRoot, 'users', blade.account, 'images')

beforeAll(async () => {
  blade = await ensureLocalBlade()
  box = await testBoxPath()
  await clearSlot(blade.account, '03')
  await clearSlot(blade.account, '04')
}, 900_000)

afterAll(async () => {
  if (!blade) return
  await clearSlot(blade.account, '03')
  await clearSlot(blade.account, '04')
})

describe('one push per slot', () => {
  it('refuses the second of two pushes to one slot started together, naming when and from where the first started', async () => {
    const push = (name: string) => startShien(['push', box, '--host', 'blade', '--slot', '03', '--name', name, '--no-start', '--json'], {home: blade.laptopHome})
    const results = await Promise.all([push('lock-a'), push('lock-b')])
    const refused = results.filter((r) => r.exitCode === 6)
    const done = results.filter((r) => r.exitCode === 0)
    expect(refused, results.map((r) => r.stderr).join('\n')).toHaveLength(1)
    expect(done).toHaveLength(1)
    const {error} = JSON.parse(String(refused[0].stdout))
    expect(error.code).toBe('SLOT_BUSY')
    expect(error.message).toMatch(new RegExp(`^Slot 03 is busy: another push to it started \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC from the laptop "${hostname()}" \\(127\\.0\\.0\\.1\\) is still running\\.`))
    expect(await definedDomains()).toContain(`${blade.account}-03`)
    // The refused push sent nothing: its name never reached incoming/.
    const incoming = readdirSync(join(blade.storageRoot, 'users', blade.account, 'incoming'))
    expect(incoming.filter((f) => f.includes('lock-'))).toEqual([])
    // The lock went with the push that held it.
    expect(await studentProcesses('blade lock')).toBe('')
  }, 600_000)
})

describe('a push whose connection goes during convert', () => {
  it('stops the blade\'s convert within seconds when the student\'s sshd session is killed, and leaves nothing staged', async () => {
    const child = startShien(['push', box, '--host', 'blade', '--slot', '04', '--name', 'gone-convert'], {home: blade.laptopHome})
    let converting = false
    child.stderr?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('Convert...')) converting = true
    })
    await until('the blade runs convert', async () => converting && (await studentProcesses('blade convert')) !== '', 300_000)
    const killedAt = Date.now()
    await execa('pkill', ['-KILL', '-u', blade.account, '-x', 'sshd'], {reject: false})
    const result = await child
    expect(result.exitCode, String(result.stderr)).toBe(4)
    expect(String(result.stderr)).toContain('Error (CONNECTION_LOST)')
    await until('the blade\'s convert and its qemu-img are gone', async () => (await studentProcesses('blade convert|qemu-img')) === '', 15_000)
    expect(Date.now() - killedAt).toBeLessThan(20_000)
    expect(readdirSync(images()).filter((f) => f.includes('04'))).toEqual([])
    expect(await definedDomains()).not.toContain(`${blade.account}-04`)
  }, 600_000)
})

describe('Ctrl-C while vagrant package runs', () => {
  it('ends with CANCELLED and 130, vagrant stopped, and nothing sent', async () => {
    const project = mkdtempSync(join(tmpdir(), 'cancel-package-'))
    writeFileSync(join(project, 'Vagrantfile'), 'Vagrant.configure("2") do |config|\n  config.vm.box = "os101/debian12"\nend\n')
    // A vagrant that takes its time, as exporting a disk does, and notes when it is stopped.
    const bin = mkdtempSync(join(tmpdir(), 'cancel-package-bin-'))
    writeFileSync(join(bin, 'vagrant'), `#!/bin/sh\ntrap 'echo stopped > ${bin}/stopped; exit 130' INT TERM\necho "==> default: Exporting VM..."\nsleep 60 & wait\n`, {mode: 0o755})
    const child = startShien(['push', '--host', 'blade', '--slot', '04', '--name', 'cancel-package'], {home: blade.laptopHome, cwd: project, env: {PATH: `${bin}:${process.env.PATH}`}})
    let exporting = false
    child.stderr?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('Exporting VM')) exporting = true
    })
    await until('vagrant package runs', () => exporting, 120_000)
    child.kill('SIGINT')
    const result = await child
    expect(result.exitCode).toBe(130)
    expect(String(result.stderr)).toMatch(/Error \(CANCELLED\)/)
    await until('vagrant was stopped', () => existsSync(join(bin, 'stopped')), 15_000)
    expect(readdirSync(join(blade.storageRoot, 'users', blade.account, 'incoming')).filter((f) => f.startsWith('cancel-package'))).toEqual([])
    expect(await studentProcesses('blade lock')).toBe('')
  }, 300_000)
})

describe('a push whose connection goes during harden', () => {
  it('stops the blade\'s harden and appliance within seconds when the student\'s sshd session is killed, and leaves the slot as it was', async () => {
    const child = startShien(['push', box, '--host', 'blade', '--slot', '04', '--name', 'gone'], {home: blade.laptopHome})
    let killedAt = 0
    child.stderr?.on('data', (chunk: Buffer) => {
      if (!killedAt && chunk.toString().includes('Harden...')) {
        killedAt = -1
        // Into the appliance's boot, then the student's sessions go (sshd's per-session processes run as the student).
        setTimeout(() => {
          killedAt = Date.now()
          void execa('pkill', ['-KILL', '-u', blade.account, '-x', 'sshd'], {reject: false})
        }, 3000)
      }
    })
    const result = await child
    expect(killedAt, String(result.stderr)).toBeGreaterThan(0)
    expect(result.exitCode).toBe(4)
    expect(String(result.stderr)).toContain('Error (CONNECTION_LOST): The connection to the blade was lost during shien blade harden')
    await until('the blade\'s harden and its appliance are gone', async () => (await studentProcesses('blade harden|guestfish|qemu-system')) === '', 15_000)
    expect(Date.now() - killedAt).toBeLessThan(20_000)
    expect(readdirSync(images()).filter((f) => f.includes('04'))).toEqual([])
    expect(await definedDomains()).not.toContain(`${blade.account}-04`)
  }, 600_000)

  it('takes the hardened image the blade finished while the laptop was gone, sending nothing again', async () => {
    const child = startShien(['push', box, '--host', 'blade', '--slot', '04', '--name', 'vanished', '--no-start'], {home: blade.laptopHome})
    let hardening = false
    child.stderr?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('Harden...')) hardening = true
    })
    // The laptop vanishes without a word (suspended) once the blade's harden runs: its
    // connection stays open, the blade goes on.
    await until('the blade runs harden', async () => hardening && (await studentProcesses('blade harden')) !== '', 300_000)
    child.kill('SIGSTOP')
    const record = join(images(), '.04.new.json')
    await until('the blade finishes harden alone', async () => {
      const hardened = existsSync(record) && readFileSync(record, 'utf8').includes('"harden"')
      return hardened && (await studentProcesses('blade harden')) === ''
    }, 300_000)
    child.kill('SIGKILL')
    await child
    await until('the blade notices the laptop is gone and lets the slot go', async () => (await studentProcesses('blade lock')) === '', 30_000)
    expect(existsSync(join(images(), '.04.new.qcow2'))).toBe(true)

    const again = await runShien(['push', box, '--host', 'blade', '--slot', '04', '--name', 'vanished', '--no-start'], {home: blade.laptopHome})
    expect(again.exitCode, again.stderr).toBe(0)
    expect(again.stderr).toContain('the blade has this box from the last try: nothing to send')
    expect(again.stderr).toContain('the blade finished converting and hardening this upload on the last try: using it')
    expect(await definedDomains()).toContain(`${blade.account}-04`)
    expect(readdirSync(images()).filter((f) => f.startsWith('.04.'))).toEqual([])
  }, 600_000)
})
