import {shellQuote} from '../../transport/remote-exec.js'
import type {VmPlan} from './plan.js'
import {loginCommand, vmLogin, type BladeNaming} from './vm-login.js'

/**
 * ie-virsh prints addresses as seen on the blade. Forwarded ports there usually listen on the
 * blade's loopback, so from a laptop they are reached through the blade: ProxyJump for the
 * guest's sshd, an ssh -L tunnel from a local port to a gdb stub's socket.
 */

/**
 * How to reach a gdb stub's socket on the blade from a laptop: a tunnel to the blade shien
 * reached (the one named, or on a cluster the one that has the slot), then gdb on the local end.
 */
export function gdbFromLaptop(socket: string, port: number, blade: Pick<BladeNaming, 'bladeSpec' | 'jump'>): {tunnel: string; gdb: string} {
  const argv = ['ssh', '-N', '-L', `${port}:${socket}`, ...sshDestination(blade)]
  return {tunnel: argv.map(shellQuote).join(' '), gdb: `gdb -ex 'target remote localhost:${port}'`}
}

/**
 * The blade as the last words of an `ssh` command a person types: the --jump hops with -J, then
 * the blade as shien named it (HOST, USER@HOST, a Host alias). ssh takes no `HOST:PORT` or
 * `[IPV6]` destination (and OpenSSH 9.2 no IPv6 in an ssh:// one), so those become `-p PORT HOST`.
 */
function sshDestination(blade: Pick<BladeNaming, 'bladeSpec' | 'jump'>): string[] {
  const hops = blade.jump === undefined || blade.jump === 'none' ? [] : ['-J', blade.jump]
  const address = /^(?:([^@]+)@)?(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d+))?$/.exec(blade.bladeSpec)
  if (address === null || !/[:[]/.test(blade.bladeSpec)) return [...hops, blade.bladeSpec]
  const [, user, ipv6, host, port] = address
  return [...hops, ...(port === undefined ? [] : ['-p', port]), `${user === undefined ? '' : `${user}@`}${ipv6 ?? host}`]
}

interface WithSsh {
  slot?: string
  name?: string
  sshPort?: number
  ssh?: string
}

/**
 * Rewrites the `ssh` fields of a result (start, list) for the laptop: `ssh -p PORT vagrant@HOST`
 * becomes the OpenSSH login through the blade under the VM's host key alias (loginCommand).
 */
export function withLaptopSsh<T extends object>(result: T, plan: Pick<VmPlan, 'target' | 'naming'>): T {
  const owner = (result as {account?: unknown}).account
  const rewrite = (o: WithSsh): WithSsh => {
    const host = /^ssh -p \d+ \S+@(\S+)$/.exec(o.ssh ?? '')?.[1]
    if (host === undefined || o.sshPort === undefined || o.slot === undefined) return o
    const account = typeof owner === 'string' ? owner : o.name?.slice(0, -(o.slot.length + 1))
    if (account === undefined) return o
    const login = vmLogin(plan.target, plan.naming, {account, slot: o.slot, host, port: o.sshPort})
    return {...o, ssh: loginCommand(login, plan.naming.home)}
  }
  const r = rewrite(result as WithSsh) as Record<string, unknown>
  if (Array.isArray(r.domains)) r.domains = r.domains.map((d) => rewrite(d as WithSsh))
  return r as T
}
