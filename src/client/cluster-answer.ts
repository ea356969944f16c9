import {z} from 'zod'

import {GUEST_ARCHES} from '../config/blade-arch.js'
import {BLADE_NAME, SSH_ADDRESS} from '../config/blade-schema.js'
import type {ClusterView} from '../protocol/blade-steps.js'

/**
 * The cluster a blade describes in its `shien blade hello` answer (docs/cluster.md). It comes
 * from another machine, and its SSH addresses become hosts the laptop connects to, so it is
 * checked before anything is done with it: blade names as the config allows them, SSH
 * addresses `HOST[:PORT]` or `[IPV6][:PORT]` only (never a user, an option or a word for a
 * shell), no name or address twice, and `self` one of the blades. What placement reads of each
 * blade (`native`, `keepFreeMiB`, `maxVms`) is optional: blades that answered before push placed
 * VMs leave it out.
 */

const MAX_BLADES = 64

const sshAddress = z.string().max(300).regex(SSH_ADDRESS, 'expected HOST, HOST:PORT or [IPV6]:PORT').refine((address) => {
  const port = /:(\d{1,5})$/.exec(address.replace(/^\[[^\]]*\]/, ''))?.[1]
  return port === undefined || (Number(port) >= 1 && Number(port) <= 65_535)
}, 'expected a TCP port from 1 to 65535')

const clusterViewSchema = z.strictObject({
  self: z.string().regex(BLADE_NAME),
  blades: z.array(z.strictObject({
    name: z.string().regex(BLADE_NAME),
    ssh: sshAddress,
    native: z.array(z.enum(GUEST_ARCHES)).max(GUEST_ARCHES.length).optional(),
    keepFreeMiB: z.int().min(0).max(2 ** 40).optional(),
    maxVms: z.int().min(1).max(2 ** 31).optional(),
  })).min(1).max(MAX_BLADES),
}).superRefine((cluster, ctx) => {
  for (const key of ['name', 'ssh'] as const) {
    const values = cluster.blades.map((b) => b[key])
    const twice = values.find((v, i) => values.indexOf(v) !== i)
    if (twice !== undefined) ctx.addIssue({code: 'custom', path: ['blades'], message: `${key} ${JSON.stringify(twice)} is listed twice`})
  }
  if (!cluster.blades.some((b) => b.name === cluster.self)) ctx.addIssue({code: 'custom', path: ['self'], message: `"${cluster.self}" is not one of the blades`})
})

/** A blade's cluster as the laptop may use it, or why it may not. */
export type ClusterAnswer = {ok: true; cluster?: ClusterView} | {ok: false; why: string}

/** The `cluster` field of a hello answer: absent (one blade), well-formed, or refused with why. */
export function clusterFromHello(hello: unknown): ClusterAnswer {
  if (hello === null || typeof hello !== 'object' || !('cluster' in hello) || hello.cluster === undefined) return {ok: true}
  const r = clusterViewSchema.safeParse(hello.cluster)
  if (r.success) return {ok: true, cluster: r.data}
  const problems = r.error.issues.map((i) => `${['cluster', ...i.path].join('.')}: ${i.message}`).join('; ')
  return {ok: false, why: `the blade described its cluster in a way shien cannot use (${problems.replace(/\s+/g, ' ').slice(0, 300)})`}
}
