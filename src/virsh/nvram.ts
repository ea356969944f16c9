import {ShienError} from '../errors.js'
import {firstErrorLine, runTool, type RunAs} from '../process/run.js'

/**
 * A UEFI VM's own variable store (NVRAM), a file in its owner's images folder that the VM's
 * firmware writes (boot entries). ie-virsh makes it, and libvirt never does: the template names
 * no `template=` for libvirt to copy from.
 */
export interface NvramStore {
  /** A fresh copy of `template` at `path`, for a new definition; refuses what is not the owner's plain file. */
  reset(path: string, template: string, o: {signal: AbortSignal}): Promise<void>
  /** Before a start: `path` is the owner's plain file, made from `template` when it is missing. */
  ensure(path: string, template: string, o: {signal: AbortSignal}): Promise<void>
}

/**
 * Runs as the owner, so nothing at the path (a symlink to another file, a hard link, a FIFO)
 * can make it reach what the owner could not; and it refuses such a path outright, so the store
 * is always a file of the owner's own with one link. The file is created with O_EXCL|O_NOFOLLOW
 * (a link planted between the check and the open fails the open), mode 0600, and written
 * sparsely: AAVMF's 64 MiB template is all zeros, so the copy takes no blocks.
 * Exit 3 with a reason on stderr: refused. argv: action, path, template.
 */
const CHILD = `
const fs = require('node:fs')
const [action, path, template] = process.argv.slice(1)
const refuse = (why) => { process.stderr.write(why + '\\n'); process.exit(3) }
try { main() } catch (e) { process.stderr.write(e.message + '\\n'); process.exit(4) }
function main() {
let info
try { info = fs.lstatSync(path) } catch (e) { if (e.code !== 'ENOENT') throw e }
if (info) {
  if (info.isSymbolicLink()) refuse('it is a symlink')
  if (!info.isFile()) refuse('it is not a regular file')
  if (info.uid !== process.getuid()) refuse('it is not owned by you')
  if (info.nlink !== 1) refuse('it has ' + info.nlink + ' hard links')
  if (action === 'ensure') return
  fs.unlinkSync(path)
}
const c = fs.constants
const out = fs.openSync(path, c.O_WRONLY | c.O_CREAT | c.O_EXCL | c.O_NOFOLLOW, 0o600)
const src = fs.openSync(template, c.O_RDONLY)
const buf = Buffer.alloc(1 << 20)
let at = 0
for (;;) {
  const n = fs.readSync(src, buf, 0, buf.length, at)
  if (n === 0) break
  const chunk = buf.subarray(0, n)
  if (chunk.some((b) => b !== 0)) fs.writeSync(out, chunk, 0, n, at)
  at += n
}
fs.ftruncateSync(out, at)
fs.fsyncSync(out)
fs.closeSync(out)
}
`

export class OwnerNvram implements NvramStore {
  constructor(private readonly owner: RunAs) {}

  reset(path: string, template: string, o: {signal: AbortSignal}): Promise<void> {
    return this.run('reset', path, template, o)
  }

  ensure(path: string, template: string, o: {signal: AbortSignal}): Promise<void> {
    return this.run('ensure', path, template, o)
  }

  private async run(action: 'reset' | 'ensure', path: string, template: string, o: {signal: AbortSignal}): Promise<void> {
    const r = await runTool(process.execPath, ['-e', CHILD, action, path, template], {as: this.owner, signal: o.signal, timeoutMs: 60_000})
    if (r.exitCode === 0) return
    if (r.exitCode === 3) {
      throw new ShienError(`The VM's UEFI variable store ${path} is refused: ${r.stderr.trim()}.`, {
        code: 'NVRAM_UNSAFE',
        exit: 'badInput',
        suggestions: [`Remove ${path} (ie-virsh makes a new one at define), and do not link it to other files.`],
      })
    }
    throw new ShienError(`Cannot make the VM's UEFI variable store ${path}: ${r.timedOut ? 'timed out' : firstErrorLine(r.stderr)}.`, {
      code: 'NVRAM_FAILED',
      exit: 'remote',
      suggestions: ['Check that your images folder is your own and has free space, then try again.'],
    })
  }
}
