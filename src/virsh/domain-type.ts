import {constants} from 'node:fs'
import {mkdtemp, open, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {runTool} from '../process/run.js'

/**
 * A 512-byte boot sector that writes 1 to qemu's isa-debug-exit port: qemu then exits with
 * status (1 << 1) | 1 = 3. Booting it proves the accelerator really runs guest code, which
 * opening /dev/kvm alone does not (nested KVM often opens fine and then fails or hangs).
 *   mov al, 1 ; out 0xf4, al ; hlt ; jmp $-1
 */
const BOOT_SECTOR = (() => {
  const sector = Buffer.alloc(512)
  Buffer.from([0xb0, 0x01, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd]).copy(sector)
  sector.writeUInt16LE(0xaa55, 510)
  return sector
})()
const PROBE_EXIT = 3

/** Boots the probe sector under `accel`; true when it ran to its exit within the time limit. */
export async function acceleratorWorks(accel: 'kvm' | 'tcg', o: {signal: AbortSignal; timeoutMs?: number}): Promise<boolean> {
  const dir = await mkdtemp('/tmp/ie-virsh-probe-')
  try {
    const disk = join(dir, 'probe.img')
    await writeFile(disk, BOOT_SECTOR, {mode: 0o600, flag: 'wx'})
    const r = await runTool(
      'qemu-system-x86_64',
      ['-accel', accel, '-machine', 'pc', '-m', '16', '-nodefaults', '-display', 'none', '-monitor', 'none',
        '-serial', 'none', '-no-reboot', '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04',
        '-drive', `file=${disk},format=raw,if=floppy`],
      {signal: o.signal, timeoutMs: o.timeoutMs ?? 15_000},
    )
    return !r.timedOut && r.exitCode === PROBE_EXIT
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
}

async function kvmOpens(): Promise<boolean> {
  try {
    await (await open('/dev/kvm', constants.O_RDWR)).close()
    return true
  } catch {
    return false
  }
}

/**
 * The libvirt domain type to use. `auto` means kvm when /dev/kvm opens read-write and boots
 * the probe, else qemu (TCG). Where KVM runs the probe but not a real guest (some nested
 * setups), the admin sets `"domainType": "qemu"` in the config.
 */
export async function resolveDomainType(
  setting: 'kvm' | 'qemu' | 'auto',
  o: {signal: AbortSignal},
  probe: (o: {signal: AbortSignal}) => Promise<boolean> = async (p) => (await kvmOpens()) && acceleratorWorks('kvm', p),
): Promise<'kvm' | 'qemu'> {
  if (setting !== 'auto') return setting
  return (await probe(o)) ? 'kvm' : 'qemu'
}
