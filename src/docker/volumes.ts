import {realpath} from 'node:fs/promises'
import {isAbsolute, sep} from 'node:path'

import {ShienError} from '../errors.js'
import type {RunAs} from '../process/run.js'
import {isFolderAs, realpathAs} from '../privileged/as-owner.js'
import type {VolumeRequest} from '../protocol/ie-docker-run.js'

const SOCKETS = ['/var/run/docker.sock', '/run/docker.sock', '/run/podman/podman.sock']

/** Whose folders a volume may come from, and as whom they are looked at. */
export interface VolumeOwner {
  /** The owner's storage folder: every volume source must be a folder inside it. */
  home: string
  owner: RunAs
  signal: AbortSignal
}

/**
 * Checks each volume against the owner's storage folder and returns the engine's `--volume`
 * arguments with the sources resolved. The source is resolved and tested **as the owner**
 * (`realpath -e` and `test -d` run with their uid and gid): a link they planted reaches only what
 * they can reach, and the answer must be a folder inside `home`. The engine mounts the resolved
 * path, and `start` checks it again (checkMountsAtStart), since the student can swap the folder
 * for a link at any time.
 */
export async function volumeArgs(volumes: readonly VolumeRequest[], o: VolumeOwner): Promise<string[]> {
  const root = await realpath(o.home)
  const args: string[] = []
  for (const v of volumes) {
    if (SOCKETS.includes(v.source)) throw volumeRefused(v.source, "the engine's socket would give the container root on the blade")
    if (!isAbsolute(v.source)) throw volumeRefused(v.source, `give the full path of a folder in ${root}`, root)
    if (v.source.split('/').includes('..')) throw volumeRefused(v.source, '".." is not allowed in volume paths')
    if (!isAbsolute(v.target) || v.target.split('/').includes('..') || v.target.includes(',')) {
      throw volumeRefused(v.source, `the container path "${v.target}" must be absolute, without ".." or commas`)
    }
    const source = await ownFolder(v.source, root, o)
    args.push('--volume', `${source}:${v.target}${v.readOnly ? ':ro' : ''}`)
  }
  return args
}

/**
 * Before a stopped container starts again: each folder it mounts must still be that folder, a
 * real one (no link anywhere on its path, resolved as the owner) inside the owner's storage.
 * Replacing the folder with a link to another student's folder or /etc between `run` and
 * `start` is refused here.
 */
export async function checkMountsAtStart(name: string, mounts: readonly {Type?: string; Source?: string}[], o: VolumeOwner): Promise<void> {
  const root = await realpath(o.home)
  for (const m of mounts) {
    if (m.Type !== 'bind') continue
    const source = m.Source ?? ''
    const real = await ownFolder(source, root, o).catch((error: unknown) => {
      // The reason alone: "it leads to /etc, outside your folder ...".
      throw startRefused(name, source, error instanceof ShienError ? error.message.replace(/^Volume .* is refused: /, '').replace(/\.$/, '') : String(error))
    })
    if (real !== source) throw startRefused(name, source, `it now leads to ${real}`)
  }
}

/** The source resolved as the owner: a folder inside `root`, or VOLUME_REFUSED. */
async function ownFolder(raw: string, root: string, o: VolumeOwner): Promise<string> {
  const real = await realpathAs(o.owner, raw, o)
  if (real === undefined) throw volumeRefused(raw, 'it does not exist or you cannot reach it', root)
  if (SOCKETS.includes(real)) throw volumeRefused(raw, "the engine's socket would give the container root on the blade")
  if (real !== root && !real.startsWith(root + sep)) {
    throw volumeRefused(raw, real === raw ? `it is outside your folder ${root}` : `it leads to ${real}, outside your folder ${root}`, root)
  }
  if (!(await isFolderAs(o.owner, real, o))) throw volumeRefused(raw, 'only folders can be mounted', root)
  return real
}

function volumeRefused(source: string, why: string, root = '<your storage folder>'): ShienError {
  return new ShienError(`Volume ${source} is refused: ${why}.`, {
    code: 'VOLUME_REFUSED',
    exit: 'refused',
    suggestions: [`Mount a folder inside ${root}, e.g. -v ${root}/repo:/srv`],
  })
}

function startRefused(name: string, source: string, why: string): ShienError {
  return new ShienError(`Container "${name}" cannot start: its volume ${source} is no longer a folder of yours (${why}).`, {
    code: 'VOLUME_REFUSED',
    exit: 'refused',
    suggestions: [`Put the folder back at ${source} (a real folder, not a link), or remove the container: ie-docker rm ${name}`],
  })
}
