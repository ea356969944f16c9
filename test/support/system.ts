import {createServer} from 'node:net'

import {execa} from 'execa'

export const LIBVIRT_URI = 'qemu:///system'

/** virsh as root on the system libvirtd: the ground truth the tests compare with. */
export const virsh = (...args: string[]) => execa('virsh', ['-c', LIBVIRT_URI, ...args], {reject: false})

/** Starts virtlogd and libvirtd when the system connection does not answer. */
export async function ensureLibvirtd(): Promise<void> {
  if ((await virsh('version')).exitCode === 0) return
  await execa('virtlogd', ['-d'], {reject: false})
  await execa('libvirtd', ['-d'], {reject: false})
  for (let i = 0; i < 50 && (await virsh('version')).exitCode !== 0; i++) await new Promise((r) => setTimeout(r, 200))
}

/** A throwaway system account for a test, in `groups` (created once, kept: uids must stay stable). */
export async function ensureUser(name: string, groups: string[] = []): Promise<number> {
  for (const group of groups) await execa('groupadd', ['-f', group])
  const found = await execa('id', ['-u', name], {reject: false})
  if (found.exitCode !== 0) {
    // Exit 9: another test created it meanwhile.
    const made = await execa('useradd', ['--no-create-home', '--shell', '/usr/sbin/nologin', name], {reject: false})
    if (made.exitCode !== 0 && made.exitCode !== 9) throw new Error(made.stderr)
  }
  if (groups.length > 0) await execa('usermod', ['--append', '--groups', groups.join(','), name])
  return Number((await execa('id', ['-u', name])).stdout)
}

/** A loopback port nothing listens on (a server that is down). */
export async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const {port} = server.address() as {port: number}
  await new Promise((resolve) => server.close(resolve))
  return port
}
