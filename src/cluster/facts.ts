import {z} from 'zod'

import {GUEST_ARCHES} from '../config/blade-arch.js'
import {BLADE_NAME} from '../config/blade-schema.js'
import type {BladeFacts} from './placement.js'

/**
 * A blade's answer to `ie-virsh facts --json` (src/virsh/facts.ts), turned into what placement
 * takes. The answer comes from another machine, so it is untrusted: anything but well-formed
 * facts of the blade that was asked (not JSON, a field missing or of the wrong kind, another
 * blade's name, an error envelope) makes that blade one that placement passes over, with why.
 */

// Memory in MiB and VM counts: whole numbers, bounded far above any blade (2^40 MiB is an exbibyte).
const amount = () => z.int().min(0).max(2 ** 40)

const factsSchema = z.object({
  blade: z.string().regex(BLADE_NAME),
  memoryMiB: amount(),
  runningMiB: amount(),
  runningVms: amount(),
  bladeMemoryMiB: amount(),
  native: z.array(z.enum(GUEST_ARCHES)).max(GUEST_ARCHES.length),
  emulated: z.array(z.enum(GUEST_ARCHES)).max(GUEST_ARCHES.length),
  drained: z.boolean(),
})

/** The facts a blade reports, as `ie-virsh facts --json` prints them. */
export type ReportedFacts = z.output<typeof factsSchema>

const envelopeSchema = z.object({error: z.object({code: z.string(), message: z.string()})})

/** What `blade` answered (ie-virsh's stdout), as placement's facts of it. */
export function factsFromAnswer(blade: string, stdout: string): BladeFacts {
  let value: unknown
  try {
    value = JSON.parse(stdout)
  } catch {
    return {reachable: false, why: `answered with something that is not JSON: ${JSON.stringify(stdout.slice(0, 80))}`}
  }
  return factsFromJson(blade, value)
}

/** The parsed JSON `blade` answered, as placement's facts of it. */
export function factsFromJson(blade: string, value: unknown): BladeFacts {
  const envelope = envelopeSchema.safeParse(value)
  if (envelope.success) return {reachable: false, why: `answered ${envelope.data.error.code}: ${oneLine(envelope.data.error.message)}`}
  const r = factsSchema.safeParse(value)
  if (!r.success) {
    const problems = r.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`).join('; ')
    return {reachable: false, why: `answered with facts shien cannot use (${oneLine(problems)})`}
  }
  const facts = r.data
  if (facts.blade !== blade) return {reachable: false, why: `answered as ${facts.blade}, not ${blade} (its cluster.self or host name is wrong)`}
  return {
    reachable: true,
    drained: facts.drained,
    memoryMiB: facts.memoryMiB,
    runningMiB: facts.runningMiB,
    capMiB: facts.bladeMemoryMiB,
    runningVms: facts.runningVms,
    native: facts.native,
  }
}

/** A message from elsewhere, kept to one short line in a reason. */
function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim()
  return flat.length > 200 ? `${flat.slice(0, 200)}...` : flat
}
