import {execa} from 'execa'

/** libvirt as root sees it: the ground truth for "nothing was defined". */
export async function definedDomains(): Promise<string[]> {
  const {stdout} = await execa('virsh', ['-c', 'qemu:///system', 'list', '--all', '--name'])
  return stdout.split('\n').map((l) => l.trim()).filter(Boolean)
}

/** Removes a domain behind ie-virsh's back: only for domains ie-virsh cannot see. */
export async function removeDomain(name: string): Promise<void> {
  await execa('virsh', ['-c', 'qemu:///system', 'destroy', name], {reject: false})
  await execa('virsh', ['-c', 'qemu:///system', 'undefine', name], {reject: false})
}

/** Runs ie-virsh through sudo as a student, exactly as on the blade (`sudo ie-virsh ...`). */
export async function ieVirshAs(account: string, args: string[]) {
  return execa('sudo', ['-u', account, '-H', '--', 'sudo', '-n', '/usr/local/bin/ie-virsh', ...args], {reject: false})
}

/** Empties a student's slot through ie-virsh (stop, undefine, image removed). */
export async function clearSlot(account: string, slot: string): Promise<void> {
  await ieVirshAs(account, ['destroy', slot])
  await ieVirshAs(account, ['undefine', slot, '--remove-image'])
}
