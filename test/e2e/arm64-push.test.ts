import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {REPO_ROOT, runShien} from '../support/cli.js'
import {ensureLocalBlade, type LocalBlade} from '../support/local-blade.js'
import {waitForBanner} from '../support/ssh-banner.js'
import {testBoxPath} from '../support/test-box.js'
import {clearSlot} from '../support/virsh.js'

// The arm64 test box as a student on an Apple Silicon Mac pushes it: shien push to the local
// blade (x86_64, no KVM: it runs aarch64 emulated and says so), harden on the arm64 disk, ie-virsh
// defines it as a virt machine with AAVMF, and it boots under qemu-system-aarch64 (TCG) to an sshd
// that lets the student in with their own key through shien vm ssh, and not with Vagrant's
// insecure key. Prints the boot time to sshd.
const SLOT = '04'
const BASE = 'os101/debian12-arm'
const VERSION = '2026.1.0'
const BOOT_MS = 900_000
const INSECURE = join(REPO_ROOT, 'test/fixtures/vagrant-insecure/vagrant.key.ed25519')

let blade: LocalBlade
let box: string
let savedKnownHosts: string

beforeAll(async () => {
  blade = await ensureLocalBlade()
  box = await testBoxPath('arm64')
  savedKnownHosts = readFileSync(blade.knownHosts, 'utf8')
  await clearSlot(blade.account, SLOT)
}, 3_600_000)

afterAll(async () => {
  if (!blade) return
  await clearSlot(blade.account, SLOT)
  writeFileSync(blade.knownHosts, savedKnownHosts)
})

describe('an arm64 box pushed from an Apple Silicon Mac (local blade, aarch64 under TCG)', () => {
  it('is pushed, told it runs emulated, defined as an aarch64 virt machine with UEFI, and boots to the student\'s key only', async () => {
    const push = await runShien(['push', box, '--host', blade.hostAlias, '--slot', SLOT, '--name', 'arm64', '--json'], {home: blade.laptopHome})
    expect(push.exitCode, push.stderr + push.stdout).toBe(0)
    expect(push.json.arch).toEqual({name: 'aarch64', mode: 'emulated'})
    const startedAt = performance.now()

    const xml = (await execa('virsh', ['-c', 'qemu:///system', 'dumpxml', `${blade.account}-${SLOT}`])).stdout
    expect(xml).toMatch(/<type arch=['"]aarch64['"] machine=['"]virt/)
    expect(xml).toMatch(/<loader[^>]*>\/usr\/share\/AAVMF\/AAVMF_CODE\.fd<\/loader>/)
    expect(xml).toContain(`/users/${blade.account}/images/${SLOT}.vars.fd`)

    const list = await runShien(['vm', 'list', '--host', blade.hostAlias, '--json'], {home: blade.laptopHome})
    const sshPort = list.json.domains.find((d: {slot: string}) => d.slot === SLOT).sshPort as number
    const waited = await waitForBanner(sshPort, BOOT_MS)
    console.log(`arm64 VM: sshd answered ${((performance.now() - startedAt) / 1000).toFixed(0)} s after the push returned (${(waited / 1000).toFixed(0)} s of waiting; aarch64 under TCG, machine virt, AAVMF)`)

    // The student's own key, through the blade, under the host key alias the push recorded: no question.
    const login = await runShien(['vm', 'ssh', SLOT, '--host', blade.hostAlias, '--', 'uname', '-m'], {home: blade.laptopHome})
    expect(login.exitCode, login.stderr).toBe(0)
    expect(login.stdout.trim()).toBe('aarch64')
    expect(login.stderr).not.toMatch(/authenticity|warning|changed/i)

    // Vagrant's insecure key is gone from the VM.
    const insecure = await execa('ssh', ['-i', INSECURE, '-p', String(sshPort), '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no',
      '-o', 'UserKnownHostsFile=/dev/null', '-o', 'ConnectTimeout=30', 'vagrant@127.0.0.1', 'true'], {reject: false})
    expect(insecure.exitCode).toBe(255)
    expect(insecure.stderr).toMatch(/Permission denied/)
  }, BOOT_MS + 1_200_000)

  it('is delta-pushed against the arm64 course base: the overlay keeps the base\'s aarch64 platform and UEFI, and the defined VM is a virt machine with AAVMF', async () => {
    await clearSlot(blade.account, SLOT)
    const boxes = join(blade.storageRoot, 'boxes')
    const published = await runShien(['box', 'publish', box, '--name', BASE, '--version', VERSION, '--to', boxes, '--force', '--json'], {home: blade.laptopHome})
    expect(published.exitCode, published.stderr + published.stdout).toBe(0)
    const base = join(boxes, BASE, VERSION, 'libvirt-arm64.qcow2')
    expect(JSON.parse(readFileSync(join(boxes, BASE, VERSION, 'libvirt-arm64.platform.json'), 'utf8'))).toEqual({architecture: 'arm64', firmware: 'efi'})

    // The student's box is the base itself: the delta holds no changed block, and the VM is the base's overlay.
    const push = await runShien(['push', box, '--base', `${BASE}@${VERSION}`, '--host', blade.hostAlias, '--slot', SLOT, '--name', 'arm64-delta', '--no-start', '--json'], {home: blade.laptopHome})
    expect(push.exitCode, push.stderr + push.stdout).toBe(0)
    expect(push.json.delta).toMatchObject({used: true, base: BASE, version: VERSION, changedBlocks: 0})
    expect(push.json.arch).toEqual({name: 'aarch64', mode: 'emulated'})
    const image = join(blade.storageRoot, 'users', blade.account, 'images', `${SLOT}.qcow2`)
    const info = JSON.parse((await execa('qemu-img', ['info', '--output=json', '-U', '-f', 'qcow2', image])).stdout) as {'backing-filename'?: string}
    expect(info['backing-filename']).toBe(base)
    const record = JSON.parse(readFileSync(join(blade.storageRoot, 'users', blade.account, 'images', `${SLOT}.json`), 'utf8'))
    expect(record).toMatchObject({firmware: 'efi'})

    const xml = (await execa('virsh', ['-c', 'qemu:///system', 'dumpxml', `${blade.account}-${SLOT}`])).stdout
    expect(xml).toMatch(/<type arch=['"]aarch64['"] machine=['"]virt/)
    expect(xml).toMatch(/<loader[^>]*>\/usr\/share\/AAVMF\/AAVMF_CODE\.fd<\/loader>/)
  }, 1_200_000)
})
