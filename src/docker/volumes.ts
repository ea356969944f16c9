import {realpath, stat} from 'node:fs/promises'
import {isAbsolute, sep} from 'node:path'

import {ShienError} from '../errors.js'
import type {VolumeRequest} from './run-args.js'

const SOCKETS = ['/var/run/docker.sock', '/run/docker.sock', '/run/podman/podman.sock']

/**
 * Checks each volume against the caller's storage folder and returns the engine's `--volume`
 * arguments with the sources resolved. The source must be a folder inside `home` once every
 * symlink is resolved: a link planted in the student's folder must not reach /etc or another
 * student. The container then runs as the caller (policy.ts), so even a folder swapped for a
 * link after this check is only reachable with the caller's own rights.
 */
export async function volumeArgs(volumes: readonly VolumeRequest[], home: string): Promise<string[]> {
  const root = await realpath(home)
  const args: string[] = []
  for (const v of volumes) {
    const source = await checkSource(v.source, root)
    if (!isAbsolute(v.target) || v.target.split('/').includes('..') || v.target.includes(',')) {
      throw volumeRefused(v.source, `the container path "${v.target}" must be absolute, without ".." or commas`)
    }
    args.push('--volume', `${source}:${v.target}${v.readOnly ? ':ro' : ''}`)
  }
  return args
}

async function checkSource(raw: string, root: string): Promise<string> {
  if (SOCKETS.includes(raw)) throw volumeRefused(raw, "the engine's socket would give the container root on the blade")
  if (!isAbsolute(raw)) throw volumeRefused(raw, `give the full path of a folder in ${root}`, root)
  if (raw.split('/').includes('..')) throw volumeRefused(raw, '".." is not allowed in volume paths')
  const real = await realpath(raw).catch(() => {
    throw volumeRefused(raw, 'it does not exist')
  })
  if (SOCKETS.includes(real)) throw volumeRefused(raw, "the engine's socket would give the container root on the blade")
  if (real !== root && !real.startsWith(root + sep)) {
    throw volumeRefused(raw, real === raw ? `it is outside your folder ${root}` : `it leads to ${real}, outside your folder ${root}`, root)
  }
  if (!(await stat(real)).isDirectory()) throw volumeRefused(raw, 'only folders can be mounted')
  return real
}

function volumeRefused(source: string, why: string, root = '<your storage folder>'): ShienError {
  return new ShienError(`Volume ${source} is refused: ${why}.`, {
    code: 'VOLUME_REFUSED',
    exit: 'refused',
    suggestions: [`Mount a folder inside ${root}, e.g. -v ${root}/repo:/srv`],
  })
}
