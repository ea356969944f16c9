/**
 * Read-only access to a mounted guest for the audit. guestfish ends the whole session on the
 * first failing command, so every read is checked first (exists, is-file, size): a missing or odd
 * file is `undefined`, never an error. Paths resolve inside the guest, symlinks included, which
 * is what sshd and sudo see; sizes are bounded so a huge planted file cannot stall the audit.
 */
import type {GuestfishSession} from '../harden/guestfish.js'
import type {ConfigSource} from './sshd-config.js'

export interface FollowedStat {
  kind: 'file' | 'dir' | 'other'
  mode: number
  uid: number
  size: number
}

const MAX_TEXT = 1024 * 1024

export class GuestFiles implements ConfigSource {
  constructor(private readonly g: GuestfishSession) {}

  /** stat(2) (symlinks followed), or undefined when nothing is there or the link dangles. */
  async stat(path: string): Promise<FollowedStat | undefined> {
    if (!path.startsWith('/') || !(await this.g.bool('exists', path))) return undefined
    const fields = new Map<string, number>()
    for (const line of await this.g.lines('statns', path)) {
      const [key, value] = line.split(': ')
      fields.set(key, Number(value))
    }
    const mode = fields.get('st_mode') ?? 0
    const type = mode & 0o170000
    return {
      kind: type === 0o100000 ? 'file' : type === 0o040000 ? 'dir' : 'other',
      mode: mode & 0o7777,
      uid: fields.get('st_uid') ?? -1,
      size: fields.get('st_size') ?? 0,
    }
  }

  /** Text of a regular file up to `max` bytes; undefined when missing, not a file, or larger. */
  async read(path: string, max = MAX_TEXT): Promise<string | undefined> {
    return (await this.readWithStat(path, max))?.text
  }

  async readWithStat(path: string, max = MAX_TEXT): Promise<{text: string; stat: FollowedStat} | undefined> {
    const stat = await this.stat(path)
    if (stat?.kind !== 'file' || stat.size > max) return undefined
    return {text: (await this.g.readFile(path)).toString('utf8'), stat}
  }

  async glob(pattern: string): Promise<string[]> {
    if (!pattern.startsWith('/')) return []
    return (await this.g.lines('glob-expand', pattern, 'directoryslash:false')).sort()
  }

  /** Names in a directory (symlinks followed), or [] when it is not one. */
  async list(dir: string): Promise<string[]> {
    if (!dir.startsWith('/') || !(await this.g.bool('is-dir', dir, 'followsymlinks:true'))) return []
    return this.g.lines('ls', dir)
  }
}
