/**
 * ie-virsh prints addresses as seen on the blade. Forwarded ports there usually listen on the
 * blade's loopback, so from a laptop they are reached through the blade: ssh's -J for the
 * guest's sshd, an ssh -L tunnel from a local port to a gdb stub's socket.
 */
const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/

/** `ssh -p PORT vagrant@127.0.0.1` as typed on a laptop: through the blade with -J. */
export function sshFromLaptop(ssh: string | undefined, alias: string): string | undefined {
  const match = ssh === undefined ? null : /^ssh -p (\d+) (\S+)@(\S+)$/.exec(ssh)
  if (!match || !LOOPBACK.test(match[3])) return ssh
  return `ssh -J ${alias} -p ${match[1]} ${match[2]}@${match[3]}`
}

/** How to reach a gdb stub's socket on the blade from a laptop: a tunnel, then gdb on the local end. */
export function gdbFromLaptop(socket: string, port: number, alias: string): {tunnel: string; gdb: string} {
  return {tunnel: `ssh -N -L ${port}:${socket} ${alias}`, gdb: `gdb -ex 'target remote localhost:${port}'`}
}

/** Rewrites the `ssh` fields of a result (start, list) for the laptop. */
export function withLaptopSsh<T extends object>(result: T, alias: string): T {
  const rewrite = (o: Record<string, unknown>) => ('ssh' in o ? {...o, ssh: sshFromLaptop(o.ssh as string, alias)} : o)
  const r = rewrite(result as Record<string, unknown>)
  if (Array.isArray(r.domains)) r.domains = r.domains.map((d) => rewrite(d as Record<string, unknown>))
  return r as T
}
