import {rm, rmdir} from 'node:fs/promises'
import {join} from 'node:path'

/**
 * The files a push keeps in the project (`.vagrant/shien/`) until it succeeds, so a re-run
 * after a failure neither packages again nor rebuilds the delta: the box `vagrant package`
 * wrote, and the delta made from it with what it was made from.
 */
export interface KeptPaths {
  dir: string
  box: string
  /** Where `vagrant package` writes; renamed to `box` once it finished. */
  packaging: string
  delta: string
  /** Where the delta is written; renamed to `delta` once it is complete. */
  deltaPart: string
  /** What the delta was made from (box size and time, base, hashes), to tell whether it still fits. */
  deltaInfo: string
}

export function keptPaths(dir: string, name: string): KeptPaths {
  return {
    dir,
    box: join(dir, `${name}.box`),
    packaging: join(dir, `${name}.packaging.box`),
    delta: join(dir, `${name}.delta`),
    deltaPart: join(dir, `${name}.delta.part`),
    deltaInfo: join(dir, `${name}.delta.json`),
  }
}

/** Removes the delta and what describes it (the box changed, or the push is over). */
export async function removeKeptDelta(paths: KeptPaths): Promise<void> {
  for (const path of [paths.delta, paths.deltaPart, paths.deltaInfo]) await rm(path, {force: true})
}

/** Removes everything kept for this name, and the folder when nothing else is left in it. */
export async function removeKept(paths: KeptPaths): Promise<void> {
  await removeKeptDelta(paths)
  for (const path of [paths.box, paths.packaging]) await rm(path, {force: true})
  await rmdir(paths.dir).catch(() => undefined)
}
