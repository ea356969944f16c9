import {badInput} from '../errors.js'
import {ELF_HEAD_BYTES, elfMachine} from './elf-machine.js'
import type {GuestfishSession} from './guestfish.js'

/** Where a Linux guest's first program is, in the order the kernel tries them (init=, then these). */
const INITS = ['/sbin/init', '/etc/init', '/bin/init', '/lib/systemd/systemd', '/usr/lib/systemd/systemd', '/bin/sh']

/**
 * The machine the guest's init is built for, read from its ELF header inside the appliance
 * (nothing from the guest runs: `realpath` follows the guest's own links within its root, `pread`
 * reads 20 bytes). When the box declares an architecture and init disagrees, the image is refused
 * with both named, before harden writes anything: an arm64 box labelled amd64 would boot nowhere.
 * A guest whose inits are all scripts or missing cannot be checked, and is taken as declared.
 */
export async function checkArchitecture(g: GuestfishSession, declared: {architecture: string; source: string} | undefined): Promise<{machine: string; init: string} | undefined> {
  const found = await initMachine(g)
  if (found && declared && !sameMachine(found.machine, declared.architecture)) {
    throw badInput('BOX_ARCH_MISMATCH', `The box declares ${declared.architecture} (${declared.source}), but its disk holds a ${found.machine} system: ${found.init} is a ${found.machine} program. The image was not changed.`, [
      `Package the VM again with "vagrant package", or set "architecture": "${found.machine}" in the box's metadata.json.`,
    ])
  }
  return found
}

async function initMachine(g: GuestfishSession): Promise<{machine: string; init: string} | undefined> {
  for (const path of INITS) {
    const real = (await g.tryCall('realpath', path)).trim()
    if (real === '' || (await g.stat(real))?.kind !== 'file') continue
    const head = elfMachine(await g.callBytes('pread', real, String(ELF_HEAD_BYTES), '0'))
    if (head.elf) return {machine: head.machine, init: real === path ? path : `${path} (${real})`}
  }
  return undefined
}

/** An x86_64 machine runs i386 programs too: a 32-bit init in an amd64 box is no contradiction. */
function sameMachine(found: string, declared: string): boolean {
  return found === declared || (declared === 'amd64' && found === 'i386')
}
