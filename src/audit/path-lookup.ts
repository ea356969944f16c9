/**
 * The folders the kernel reads an entry of when it looks a path up, with the path's symlinks
 * followed by hand (lstat and readlink), never by the kernel. Whoever can write one of those
 * folders can make the path name another file: the name a qcow2 holds for its backing file is
 * looked up again each time qemu opens the image.
 */
import {lstat, readlink} from 'node:fs/promises'
import {dirname, join} from 'node:path'

import {ShienError} from '../errors.js'

/** Linux's limit on symlinks followed in one lookup. */
const MAX_LINKS = 40

/** The folders a lookup of the absolute `path` goes through, in order, each once; symlinks are resolved by hand. */
export async function lookupFolders(path: string): Promise<string[]> {
  const folders: string[] = []
  let pending = components(path)
  let dir = '/'
  let links = 0
  while (pending.length > 0) {
    const part = pending.shift()!
    // `..` after a symlink leaves the folder the link led to, as the kernel does: `dir` is always a real folder.
    if (part === '..') dir = dirname(dir)
    if (part === '.' || part === '..') continue
    if (!folders.includes(dir)) folders.push(dir)
    const next = join(dir, part)
    if (!(await lstat(next)).isSymbolicLink()) {
      dir = next
      continue
    }
    if (++links > MAX_LINKS) throw new ShienError(`Too many symlinks in ${path}.`, {code: 'PATH_LOOP'})
    const target = await readlink(next)
    if (target.startsWith('/')) dir = '/'
    pending = [...components(target), ...pending]
  }
  return folders
}

function components(path: string): string[] {
  return path.split('/').filter((c) => c !== '')
}
