// The amd64 UEFI test box (boxes/debian-12-efi), as an instructor builds it with shien box
// build: shien takes it as a VirtualBox amd64 box with EFI firmware; its disk is GPT with an
// EFI system partition and no BIOS boot code, so only UEFI firmware can start it; and it
// boots under OVMF (qemu-system-x86_64, machine q35, TCG, a fresh copy of the variable store as
// ie-virsh gives each VM) to an sshd that lets Vagrant's insecure key in. Prints the boot time.
import {type ChildProcess, spawn} from 'node:child_process'
import {copyFile, mkdtemp, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {loaderOf, varsTemplateFor} from '../../src/virsh/firmware.js'
import {REPO_ROOT, SHIEN_BIN} from '../support/cli.js'
import {waitForBanner} from '../support/ssh-banner.js'
import {closedPort} from '../support/system.js'
import {testBoxPath} from '../support/test-box.js'

const BOOT_MS = 300_000
const SECTOR = 512
const ESP_TYPE = 'c12a7328-f81f-11d2-ba4b-00a0c93ec93b'
const LINUX_TYPE = '0fc63daf-8483-4772-8e79-3d69d8477de4'

let work: string
let box: string
let qemu: ChildProcess | undefined

beforeAll(async () => {
  box = await testBoxPath('amd64', 'efi')
  work = await mkdtemp(join(tmpdir(), 'efi-box-'))
  await execa('tar', ['-xf', box, '-C', work, 'box-disk001.vmdk'])
}, 1_800_000)

afterAll(async () => {
  if (qemu?.exitCode === null) {
    const exited = new Promise((resolve) => qemu!.once('exit', resolve))
    qemu.kill('SIGKILL')
    await exited
  }
  if (work) await rm(work, {recursive: true, force: true})
})

/** The first 34 sectors of a disk image: the MBR, the GPT header and its partition entries. */
async function diskHead(image: string, format: string): Promise<Buffer> {
  const out = join(work, `head-${Date.now()}.raw`)
  await execa('qemu-img', ['dd', '-f', format, '-O', 'raw', `if=${image}`, `of=${out}`, `bs=${SECTOR}`, 'count=34'])
  const head = await readFile(out)
  await rm(out)
  return head
}

/** A GPT partition type GUID as written (the first three fields little-endian). */
function guid(bytes: Buffer): string {
  const hex = (b: Buffer) => b.toString('hex')
  const le = (b: Buffer) => hex(Buffer.from(b).reverse())
  return `${le(bytes.subarray(0, 4))}-${le(bytes.subarray(4, 6))}-${le(bytes.subarray(6, 8))}-${hex(bytes.subarray(8, 10))}-${hex(bytes.subarray(10, 16))}`
}

/** Whether the MBR has code for a BIOS to run: its first 440 bytes are not all zero. */
const hasBiosBootCode = (head: Buffer) => head.subarray(0, 440).some((b) => b !== 0)

describe('the amd64 UEFI Debian test box', () => {
  it('is a VirtualBox box shien box inspect takes as amd64 with EFI firmware, packed as vagrant package packs one', async () => {
    const run = await execa('node', [SHIEN_BIN, 'box', 'inspect', box, '--json'], {reject: false})
    expect(run.exitCode, run.stdout + run.stderr).toBe(0)
    const info = JSON.parse(run.stdout)
    expect(info.entries.map((e: {name: string}) => e.name)).toEqual(['box.ovf', 'box-disk001.vmdk', 'metadata.json', 'Vagrantfile'])
    expect(info.provider).toBe('virtualbox')
    expect(info.metadata).toEqual({provider: 'virtualbox', architecture: 'amd64'})
    expect(info.architecture).toBe('amd64')
    expect(info.firmware).toBe('efi')
    expect(info.disks).toHaveLength(1)
  })

  it('has a GPT disk with an EFI system partition and no BIOS boot code, unlike the BIOS box', async () => {
    const head = await diskHead(join(work, 'box-disk001.vmdk'), 'vmdk')
    // A protective MBR: one partition of type 0xEE, and nothing for a BIOS (SeaBIOS) to run.
    expect(hasBiosBootCode(head)).toBe(false)
    expect(head.readUInt16LE(510)).toBe(0xaa55)
    expect(head[446 + 4]).toBe(0xee)
    expect(head.subarray(462, 510).every((b) => b === 0)).toBe(true)
    // The GPT: the EFI system partition first, then the Linux root; no BIOS boot partition.
    expect(head.subarray(SECTOR, SECTOR + 8).toString('latin1')).toBe('EFI PART')
    const entries = head.readUInt32LE(SECTOR + 80)
    const entrySize = head.readUInt32LE(SECTOR + 84)
    const types: string[] = []
    for (let i = 0; i < entries && 2 * SECTOR + (i + 1) * entrySize <= head.length; i++) {
      const type = guid(head.subarray(2 * SECTOR + i * entrySize, 2 * SECTOR + i * entrySize + 16))
      if (type !== '00000000-0000-0000-0000-000000000000') types.push(type)
    }
    expect(types).toEqual([ESP_TYPE, LINUX_TYPE])

    // The same reading of the BIOS box finds its boot code (EXTLINUX's mbr.bin).
    const biosBox = await testBoxPath('amd64', 'bios')
    const biosDir = await mkdtemp(join(work, 'bios-'))
    await execa('tar', ['-xf', biosBox, '-C', biosDir, 'box-disk001.vmdk'])
    const biosHead = await diskHead(join(biosDir, 'box-disk001.vmdk'), 'vmdk')
    await rm(biosDir, {recursive: true, force: true})
    expect(hasBiosBootCode(biosHead)).toBe(true)
    expect(biosHead[446 + 4]).not.toBe(0xee)
  }, 300_000)

  it('boots under OVMF with a fresh variable store to an sshd that lets the insecure key in, and runs on UEFI', async () => {
    // The UEFI code ie-virsh's x86_64 UEFI template loads, and the variable store its firmware
    // descriptor pairs with it: each VM starts with a copy.
    const loader = loaderOf(await readFile(join(REPO_ROOT, 'templates/normal.uefi.xml'), 'utf8'))!
    expect(loader).toMatch(/OVMF/)
    const vars = join(work, 'vars.fd')
    await copyFile(await varsTemplateFor(loader), vars)
    const disk = join(work, 'disk.qcow2')
    await execa('qemu-img', ['convert', '-f', 'vmdk', '-O', 'qcow2', join(work, 'box-disk001.vmdk'), disk])
    const key = join(work, 'key')
    await copyFile(join(REPO_ROOT, 'test/fixtures/vagrant-insecure/vagrant.key.ed25519'), key)
    await execa('chmod', ['0600', key])
    const port = await closedPort()

    const started = performance.now()
    qemu = spawn('qemu-system-x86_64', [
      '-machine', 'q35', '-accel', 'tcg', '-m', '1024', '-smp', '1',
      '-display', 'none', '-monitor', 'none', '-serial', `file:${join(work, 'console.log')}`,
      '-drive', `if=pflash,format=raw,readonly=on,file=${loader}`,
      '-drive', `if=pflash,format=raw,file=${vars}`,
      '-drive', `file=${disk},format=qcow2,if=none,id=d0`, '-device', 'virtio-blk-pci,drive=d0',
      '-netdev', `user,id=n0,hostfwd=tcp:127.0.0.1:${port}-:22`, '-device', 'virtio-net-pci,netdev=n0',
    ], {stdio: ['ignore', 'ignore', 'pipe']})
    let qemuErr = ''
    qemu.stderr!.on('data', (chunk) => (qemuErr += chunk))
    const console_ = () => readFile(join(work, 'console.log'), 'utf8').catch(() => '')

    try {
      await waitForBanner(port, BOOT_MS)
    } catch (error) {
      throw new Error(`${(error as Error).message}; qemu: ${qemuErr.trim() || 'no error'}; console ends:\n${(await console_()).slice(-2000)}`)
    }
    console.log(`amd64 UEFI box: sshd answered ${((performance.now() - started) / 1000).toFixed(0)} s after qemu started (q35, TCG, 1 vCPU, OVMF ${loader})`)

    const ssh = await execa('ssh', [
      '-p', String(port), '-i', key, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10',
      // A throwaway VM on loopback, started by this test.
      '-o', 'UserKnownHostsFile=/dev/null', '-o', 'StrictHostKeyChecking=no', '-o', 'LogLevel=ERROR',
      'vagrant@127.0.0.1',
      'test -d /sys/firmware/efi && echo efi; cat /sys/firmware/efi/fw_platform_size; uname -m; sudo -n ls /boot/efi/EFI/BOOT',
    ], {reject: false})
    expect(ssh.exitCode, ssh.stderr).toBe(0)
    expect(ssh.stdout.trim().split('\n')).toEqual(['efi', '64', 'x86_64', 'BOOTX64.EFI'])
    // On the serial console: OVMF started the disk (a fresh variable store has no boot entry of
    // the box's, so it took the removable path), GRUB ran its built-in configuration without a
    // complaint, and its menu put the kernel's console there too, where getty asks for a login.
    const log = await console_()
    expect(log).toMatch(/BdsDxe: starting Boot[0-9A-F]{4} "UEFI Misc Device" from PciRoot/)
    const grub = log.slice(log.indexOf('Welcome to GRUB!'), log.indexOf('Linux version'))
    expect(grub).toMatch(/^Welcome to GRUB![^]*GNU GRUB/)
    expect(grub).not.toMatch(/Unknown command|error:/)
    expect(log).toMatch(/debian-12 login:/)
  }, BOOT_MS + 120_000)
})
