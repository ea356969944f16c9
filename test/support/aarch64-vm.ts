// An arm64 box's disk booted by qemu-system-aarch64 itself, not through libvirt: machine virt,
// TCG, UEFI from AAVMF (qemu-efi-aarch64) with the VM's own copy of the variable store, virtio
// disk and NIC, user networking with sshd forwarded to a loopback port.
import {copyFile, readFile} from 'node:fs/promises'
import {join} from 'node:path'

import {execa, type ResultPromise} from 'execa'

import {closedPort} from './system.js'

const AAVMF_CODE = '/usr/share/AAVMF/AAVMF_CODE.fd'
const AAVMF_VARS = '/usr/share/AAVMF/AAVMF_VARS.fd'

export interface Aarch64Vm {
  /** The loopback port forwarded to the guest's port 22. */
  sshPort: number
  /** The serial console (ttyAMA0); qemu's own messages are in the process's stderr. */
  consoleLog: string
  /** When qemu was started (performance.now()). */
  startedAt: number
  process: ResultPromise
  stop(): Promise<void>
}

/** Boots `disk` (a qcow2) in `dir`, which also gets the NVRAM copy and the console log. */
export async function bootAarch64(disk: string, dir: string, opts: {cpus?: number; memoryMiB?: number} = {}): Promise<Aarch64Vm> {
  const vars = join(dir, 'AAVMF_VARS.fd')
  await copyFile(AAVMF_VARS, vars)
  const sshPort = await closedPort()
  const consoleLog = join(dir, 'console.log')
  const args = [
    '-machine', 'virt', '-accel', 'tcg', '-cpu', 'cortex-a57',
    '-smp', String(opts.cpus ?? 2), '-m', String(opts.memoryMiB ?? 1024),
    '-nographic', '-no-reboot',
    '-drive', `if=pflash,format=raw,readonly=on,file=${AAVMF_CODE}`,
    '-drive', `if=pflash,format=raw,file=${vars}`,
    '-drive', `file=${disk},format=qcow2,if=none,id=d0`, '-device', 'virtio-blk-pci,drive=d0',
    '-netdev', `user,id=n0,hostfwd=tcp:127.0.0.1:${sshPort}-:22`, '-device', 'virtio-net-pci,netdev=n0',
  ]
  const startedAt = performance.now()
  const child = execa('qemu-system-aarch64', args, {stdin: 'ignore', stdout: {file: consoleLog}, stderr: 'pipe', reject: false})
  return {
    sshPort, consoleLog, startedAt, process: child,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM')
      await child
    },
  }
}

/** Runs `command` in the guest as vagrant over OpenSSH, with `key`; the throwaway VM's host key is not kept. */
export function sshGuest(port: number, key: string, command: string) {
  return execa('ssh', [
    '-p', String(port), '-i', key, '-F', '/dev/null',
    '-o', 'UserKnownHostsFile=/dev/null', '-o', 'StrictHostKeyChecking=no', '-o', 'IdentitiesOnly=yes',
    '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5', '-o', 'LogLevel=ERROR',
    'vagrant@127.0.0.1', command,
  ], {reject: false, stdin: 'ignore', env: {SSH_AUTH_SOCK: ''}})
}

/** Waits until the guest's sshd lets `key` in; the seconds since qemu started, or throws with the console's end. */
export async function waitForSsh(vm: Aarch64Vm, key: string, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs
  while (performance.now() < deadline) {
    if (vm.process.exitCode !== null || vm.process.signalCode !== null) break
    if ((await sshGuest(vm.sshPort, key, 'true')).exitCode === 0) return (performance.now() - vm.startedAt) / 1000
    await new Promise((resolve) => setTimeout(resolve, 2000))
  }
  const tail = (await readFile(vm.consoleLog, 'utf8').catch(() => '')).split('\n').slice(-30).join('\n')
  const exited = vm.process.exitCode === null ? '' : ` (qemu exited ${vm.process.exitCode}: ${String((await vm.process).stderr).trim()})`
  throw new Error(`the guest's sshd did not let the key in within ${timeoutMs / 1000} s${exited}; console:\n${tail}`)
}
