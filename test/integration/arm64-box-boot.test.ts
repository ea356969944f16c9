// The arm64 Debian test box (boxes/debian-12-arm64), as an instructor builds it with shien box
// build: shien takes it as a VirtualBox arm64 box with EFI firmware, and its disk boots under
// qemu-system-aarch64 (virt, TCG, AAVMF) started here, with no blade involved, to an sshd that
// lets Vagrant's insecure keys in. Prints the boot time to sshd.
import {chmod, copyFile, mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {bootAarch64, sshGuest, waitForSsh, type Aarch64Vm} from '../support/aarch64-vm.js'
import {REPO_ROOT, SHIEN_BIN} from '../support/cli.js'
import {testBoxPath} from '../support/test-box.js'

const KEYS = join(REPO_ROOT, 'test/fixtures/vagrant-insecure')

describe('the arm64 Debian test box', () => {
  let box: string
  let dir: string
  let vm: Aarch64Vm | undefined

  beforeAll(async () => {
    box = await testBoxPath('arm64')
    dir = await mkdtemp(join(tmpdir(), 'shien-arm64-box-'))
    for (const k of ['rsa', 'ed25519']) {
      await copyFile(join(KEYS, `vagrant.key.${k}`), join(dir, `key.${k}`))
      await chmod(join(dir, `key.${k}`), 0o600)
    }
  }, 1_800_000)

  afterAll(async () => {
    await vm?.stop()
    if (dir) await rm(dir, {recursive: true, force: true})
  })

  it('is a VirtualBox box shien box inspect takes as arm64 with EFI firmware, packed as vagrant package packs one', async () => {
    const run = await execa('node', [SHIEN_BIN, 'box', 'inspect', box, '--json'], {reject: false})
    expect(run.exitCode, run.stdout + run.stderr).toBe(0)
    const info = JSON.parse(run.stdout)
    expect(info.entries.map((e: {name: string}) => e.name)).toEqual(['box.ovf', 'box-disk001.vmdk', 'metadata.json', 'Vagrantfile'])
    expect(info.provider).toBe('virtualbox')
    expect(info.metadata).toEqual({provider: 'virtualbox', architecture: 'arm64'})
    expect(info.architecture).toBe('arm64')
    expect(info.firmware).toBe('efi')
    // Declared three times, and all three agree: metadata.json, the OVF's platform, its OS type.
    expect(info.architectureClaims.map((c: {source: string}) => c.source).join('\n')).toMatch(/metadata\.json[^]*Platform architecture="ARM"[^]*Debian12_arm64/)
    expect(info.disks).toHaveLength(1)
  })

  it('boots under qemu-system-aarch64 (virt, TCG, AAVMF) to an sshd that lets both Vagrant insecure keys in', async () => {
    await execa('tar', ['-xf', box, '-C', dir, 'box-disk001.vmdk'])
    const disk = join(dir, 'disk.qcow2')
    await execa('qemu-img', ['convert', '-f', 'vmdk', '-O', 'qcow2', join(dir, 'box-disk001.vmdk'), disk])
    await rm(join(dir, 'box-disk001.vmdk'))

    vm = await bootAarch64(disk, dir, {cpus: 2})
    const seconds = await waitForSsh(vm, join(dir, 'key.ed25519'), 600_000)
    console.log(`arm64 box: sshd let the insecure key in ${seconds.toFixed(0)} s after qemu-system-aarch64 started (TCG, cortex-a57, 2 vCPUs)`)

    const probe = await sshGuest(vm.sshPort, join(dir, 'key.ed25519'), [
      'uname -m', 'test -d /sys/firmware/efi && echo uefi', 'hostname', 'sudo -n true && echo sudo',
      'findmnt -no FSTYPE /', 'findmnt -no FSTYPE /boot/efi', 'networkctl list --no-legend | grep -c routable',
      'cat /proc/cmdline',
    ].join('; '))
    expect(probe.exitCode, probe.stderr).toBe(0)
    const [arch, firmware, hostname, sudo, rootFs, espFs, routable, cmdline] = probe.stdout.split('\n')
    expect(arch).toBe('aarch64')
    expect(firmware).toBe('uefi')
    expect(hostname).toBe('debian-12')
    expect(sudo).toBe('sudo')
    expect(rootFs).toBe('ext4')
    expect(espFs).toBe('vfat')
    expect(Number(routable)).toBeGreaterThanOrEqual(1)
    expect(cmdline).toContain('root=LABEL=debian-12-root')
    expect(cmdline).toContain('console=ttyAMA0')

    const rsa = await sshGuest(vm.sshPort, join(dir, 'key.rsa'), 'id -un')
    expect(rsa.stdout.trim(), rsa.stderr).toBe('vagrant')
  }, 900_000)
})
