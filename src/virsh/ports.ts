import {mkdir, open, readFile, readdir, unlink} from 'node:fs/promises'
import {join} from 'node:path'

import {ShienError} from '../errors.js'
import type {PortPool} from '../server/config.js'

/**
 * Host ports for guests' SSH forwards, shared by every blade on the storage. A port is taken
 * by creating `<dir>/<port>` with O_EXCL, which the filesystem (GFS2 across blades) grants to
 * exactly one creator, so no lock is needed; the file holds the domain name, which is how a
 * port is found again when its domain is undefined.
 */
export class SshPortPool {
  constructor(
    private readonly dir: string,
    private readonly range: PortPool,
  ) {
    const ok = (n: number) => Number.isInteger(n) && n >= 1 && n <= 65_535
    if (!ok(range.from) || !ok(range.to) || range.from > range.to) {
      throw new ShienError(`The SSH port pool ${range.from}-${range.to} in the blade configuration is invalid.`, {
        code: 'CONFIG_INVALID',
      })
    }
  }

  /** Takes the lowest free port for `owner` (a domain name). */
  async allocate(owner: string): Promise<number> {
    await mkdir(this.dir, {recursive: true, mode: 0o755})
    for (let port = this.range.from; port <= this.range.to; port++) {
      const handle = await open(join(this.dir, String(port)), 'wx', 0o644).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'EEXIST') return undefined
        throw error
      })
      if (handle === undefined) continue
      try {
        await handle.writeFile(`${owner}\n`)
      } finally {
        await handle.close()
      }
      return port
    }
    throw new ShienError(`All SSH ports ${this.range.from}-${this.range.to} are in use; no VM can be defined.`, {
      code: 'POOL_EMPTY',
      exit: 'refused',
      suggestions: ['Undefine a VM you no longer need, or ask an admin to widen sshPortPool.'],
    })
  }

  /** Returns every port `owner` holds to the pool; resolves with the ports freed. */
  async release(owner: string): Promise<number[]> {
    const names = await readdir(this.dir).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return [] as string[]
      throw error
    })
    const freed: number[] = []
    for (const name of names.filter((n) => /^[0-9]{1,5}$/.test(n))) {
      const path = join(this.dir, name)
      const content = await readFile(path, 'utf8').catch(() => '')
      if (content.trim() !== owner) continue
      await unlink(path)
      freed.push(Number(name))
    }
    return freed.sort((a, b) => a - b)
  }
}
