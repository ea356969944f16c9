import {readdir, unlink} from 'node:fs/promises'
import {join} from 'node:path'

import {z} from 'zod'

import {ShienError} from '../errors.js'
import {BLADE_NAME} from '../config/blade-schema.js'
import {clusterPaths} from '../config/storage-layout.js'
import {ensureRootDir, writeRootFile} from './root-dir.js'
import {openExact} from './safe-open.js'

/**
 * Which blades an admin has drained for maintenance (`shien admin drain`): one file a blade in
 * `<root>/cluster/drained/`, root's like the slot records (docs/cluster.md). Placement skips a
 * drained blade; `undrain` removes the file. Each change replaces or removes one whole file, so
 * no lock is needed.
 */

const markSchema = z.strictObject({
  blade: z.string().regex(BLADE_NAME),
  /** When it was drained, ISO 8601. */
  since: z.string(),
  /** Who drained it (the admin's account), for `vm list` and the admins. */
  by: z.string(),
})

export type DrainMark = z.output<typeof markSchema>

export interface DrainedBlades {
  /** Marks `blade` drained; draining a drained blade keeps the first mark. */
  drain(blade: string, by: string): Promise<DrainMark>
  /** Removes the mark; the mark removed, or undefined when the blade was not drained. */
  undrain(blade: string): Promise<DrainMark | undefined>
  /** Every drained blade, by name. */
  list(): Promise<DrainMark[]>
}

/** The drain marks of a storage root, their folders made or checked first (as openSlotRecords does). */
export async function openDrainedBlades(storageRoot: string): Promise<DrainedBlades> {
  const {dir, drained} = clusterPaths(storageRoot)
  await ensureRootDir(dir, 0o755)
  await ensureRootDir(drained, 0o755)
  const file = (blade: string) => join(drained, `${checkBlade(blade)}.json`)

  const read = async (blade: string): Promise<DrainMark | undefined> => {
    const opened = await openExact(file(blade), {code: 'DRAIN_MARK'}).catch((error: unknown) => {
      if (error instanceof ShienError && error.code === 'DRAIN_MARK_MISSING') return undefined
      throw damaged(file(blade), error instanceof Error ? error.message : String(error), error)
    })
    if (opened === undefined) return undefined
    const text = await opened.handle.readFile('utf8').finally(() => opened.handle.close())
    let value: unknown
    try {
      value = JSON.parse(text)
    } catch (error) {
      throw damaged(file(blade), 'not JSON', error)
    }
    const r = markSchema.safeParse(value)
    if (!r.success || r.data.blade !== blade) throw damaged(file(blade), r.success ? `it names ${r.data.blade}` : 'not a drain mark', r.error)
    return r.data
  }

  return {
    drain: async (blade, by) => {
      const held = await read(blade)
      if (held !== undefined) return held
      const mark: DrainMark = {blade, since: new Date().toISOString(), by}
      await writeRootFile(file(blade), `${JSON.stringify(mark)}\n`)
      return mark
    },
    undrain: async (blade) => {
      const held = await read(blade)
      if (held !== undefined) await unlink(file(blade))
      return held
    },
    list: async () => {
      const marks: DrainMark[] = []
      for (const name of (await readdir(drained)).sort()) {
        const m = /^(.+)\.json$/.exec(name)
        const mark = m === null || !BLADE_NAME.test(m[1]) ? undefined : await read(m[1])
        if (mark !== undefined) marks.push(mark)
      }
      return marks
    },
  }
}

function checkBlade(blade: string): string {
  if (!BLADE_NAME.test(blade)) throw new ShienError(`Internal error: "${blade}" is not a blade name.`, {code: 'UNKNOWN_BLADE', exit: 'usage'})
  return blade
}

function damaged(path: string, why: string, cause?: unknown): ShienError {
  return new ShienError(`The drain mark ${path} cannot be read: ${why}.`, {
    code: 'DRAIN_MARK_INVALID',
    exit: 'remote',
    cause,
    suggestions: ['Ask an admin: only shien writes these marks (docs/cluster.md); remove the file, then drain the blade again if it should be.'],
  })
}
