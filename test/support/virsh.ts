import {chmod, chown, mkdir, mkdtemp, readdir, rm} from 'node:fs/promises'
import {join} from 'node:path'

import {execa} from 'execa'

/**
 * libvirt as root sees it: the ground truth for "nothing was defined". With `accounts`, only
 * their domains (`<account>-NN`): the local project's tests define their own beside the blade's.
 */
export async function definedDomains(accounts?: readonly string[]): Promise<string[]> {
  const {stdout} = await execa('virsh', ['-c', 'qemu:///system', 'list', '--all', '--name'])
  const names = stdout.split('\n').map((l) => l.trim()).filter(Boolean)
  return accounts ? names.filter((n) => accounts.some((a) => n.startsWith(`${a}-`))) : names
}

/** Removes a domain behind ie-virsh's back: only for domains ie-virsh cannot see. */
export async function removeDomain(name: string): Promise<void> {
  await execa('virsh', ['-c', 'qemu:///system', 'destroy', name], {reject: false})
  // A UEFI domain is undefined only when told what to do with its variable store (the test removes the files).
  await execa('virsh', ['-c', 'qemu:///system', 'undefine', '--keep-nvram', name], {reject: false})
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

/**
 * Leaves a test's storage root with no domain, image or port of these accounts (slots 01-05),
 * so a test that fails cannot make the next one fail. Works behind ie-virsh's back, as root.
 */
export async function emptyVirshState(root: string, accounts: readonly string[]): Promise<void> {
  for (const account of accounts) {
    for (const slot of ['01', '02', '03', '04', '05']) await removeDomain(`${account}-${slot}`)
    const images = join(root, 'users', account, 'images')
    for (const name of await readdir(images).catch(() => [] as string[])) await rm(join(images, name), {recursive: true, force: true})
  }
  await rm(join(root, 'ports'), {recursive: true, force: true})
}

/**
 * A storage root for ie-virsh tests, as a blade has it: `prefix` + random under /tmp, mode 0755
 * (each VM's qemu, running as its owner, traverses it as it does /gfs2/shien), `users/<account>`
 * and its `images/` owned by the account (uids given), mode 0700.
 */
export async function makeVirshStorage(prefix: string, uids: Readonly<Record<string, number>>): Promise<string> {
  const root = await mkdtemp(`/tmp/${prefix}`)
  await chmod(root, 0o755)
  await mkdir(join(root, 'users'), {mode: 0o755})
  for (const [account, uid] of Object.entries(uids)) {
    const images = join(root, 'users', account, 'images')
    await mkdir(images, {recursive: true, mode: 0o700})
    await chown(join(root, 'users', account), uid, uid)
    await chown(images, uid, uid)
  }
  return root
}
