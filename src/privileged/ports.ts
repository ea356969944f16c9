import {mkdir, open, readFile, readdir, unlink} from 'node:fs/promises'
import {join} from 'node:path'

import {ShienError} from '../errors.js'
import type {PortPool as PortRange} from '../config/blade-config.js'

/** A port in use: what holds it, and for ports of running things the blade they run on. */
export interface PortHolder {
  port: number
  owner: string
  host?: string
}

export type PoolKind = 'ssh' | 'container'

const HOW_TO_FREE: Record<PoolKind, string> = {
  ssh: 'Undefine a VM you no longer need, or ask an admin to widen sshPortPool.',
  container: 'Remove a container you no longer need (ie-docker rm NAME), or ask an admin to widen docker.portPool.',
}

const LABEL: Record<PoolKind, string> = {ssh: 'SSH', container: 'container'}

/**
 * Host ports shared by every blade on the storage. A port is taken by creating `<dir>/<port>`
 * with O_EXCL, which the filesystem (GFS2 across blades) grants to exactly one creator, so
 * no lock is needed to take one; the file holds the domain name (and, for container ports, the
 * blade), which is how a port is found again when its domain goes away.
 */
export class PortPool {
  constructor(
    private readonly dir: string,
    private readonly range: PortRange,
    private readonly kind: PoolKind,
    /** Recorded with each port: only this blade can tell whether its domains still run. */
    private readonly host?: string,
  ) {
    const ok = (n: number) => Number.isInteger(n) && n >= 1 && n <= 65_535
    if (!ok(range.from) || !ok(range.to) || range.from > range.to) {
      throw new ShienError(`The ${this.label} port pool ${range.from}-${range.to} in the blade configuration is invalid.`, {
        code: 'CONFIG_INVALID',
      })
    }
  }

  private get label(): string {
    return LABEL[this.kind]
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
        await handle.writeFile(this.host === undefined ? `${owner}\n` : `${owner} ${this.host}\n`)
      } finally {
        await handle.close()
      }
      return port
    }
    throw new ShienError(`All ${this.label} ports ${this.range.from}-${this.range.to} are in use.`, {
      code: 'POOL_EMPTY',
      exit: 'refused',
      suggestions: [HOW_TO_FREE[this.kind]],
    })
  }

  /** Every port taken, with its holder. */
  async holders(): Promise<PortHolder[]> {
    const names = await readdir(this.dir).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return [] as string[]
      throw error
    })
    const held: PortHolder[] = []
    for (const name of names.filter((n) => /^[0-9]{1,5}$/.test(n))) {
      const [owner = '', host] = (await readFile(join(this.dir, name), 'utf8').catch(() => '')).trim().split(/\s+/)
      held.push({port: Number(name), owner, host})
    }
    return held.sort((a, b) => a.port - b.port)
  }

  /** Returns every port `owner` holds to the pool; resolves with the ports freed. */
  async release(owner: string): Promise<number[]> {
    return this.free((h) => h.owner === owner)
  }

  /**
   * Returns the ports this blade's domains hold while not running (a debug VM that was
   * stopped, powered itself off or was undefined). Ports held on other blades are theirs to
   * reclaim: this blade cannot see those domains.
   */
  async reclaim(isActive: (domain: string) => boolean): Promise<number[]> {
    return this.free((h) => h.host === this.host && !isActive(h.owner))
  }

  private async free(which: (holder: PortHolder) => boolean): Promise<number[]> {
    const freed: number[] = []
    for (const holder of await this.holders()) {
      if (!which(holder)) continue
      await unlink(join(this.dir, String(holder.port))).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error
      })
      freed.push(holder.port)
    }
    return freed
  }
}

/** The pool of host ports forwarded to guests' sshd. */
export class SshPortPool extends PortPool {
  constructor(dir: string, range: PortRange) {
    super(dir, range, 'ssh')
  }
}
