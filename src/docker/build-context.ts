import {chmod, constants, copyFile, lstat, mkdir, mkdtemp, open, rm, utimes} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {dirname, join, posix} from 'node:path'

import tarStream from 'tar-stream'

import {ShienError} from '../errors.js'
import {startSession} from '../process/run.js'

export interface Snapshot {
  /** A private copy of the context (root's, mode 0700 above it), for the engine to build from. */
  dir: string
  bytes: number
  /** Entries that are not files or folders (devices, fifos, sockets): left out. */
  skipped: string[]
  /** Removes the copy. */
  remove: () => Promise<void>
}

/**
 * Copies a build context into a private folder before the engine (root) reads it. The student's
 * folder is read by `tar` running as the student, so it can only ever read what they may read,
 * and no symlink swapped in after the checks can point the build at /etc. What comes back is
 * unpacked here with its own checks: no absolute or `..` names, hard links copied, no setuid
 * bits, at most `maxBytes` of files, and no symbolic links at all: the builder resolves a link
 * named by a bind mount on the host (CVE-2024-1753), and a copy without links has nothing for
 * it to follow.
 */
export async function snapshotContext(source: string, o: {uid: number; gid: number; maxBytes: number; signal: AbortSignal}): Promise<Snapshot> {
  const top = await mkdtemp(join(tmpdir(), 'ie-docker-build-'))
  const root = join(top, 'context')
  const remove = () => rm(top, {recursive: true, force: true})
  try {
    await mkdir(root, {mode: 0o755})
    const {bytes, skipped} = await unpackAsCaller(source, root, o)
    return {dir: root, bytes, skipped, remove}
  } catch (error) {
    await remove()
    throw error
  }
}

async function unpackAsCaller(source: string, root: string, o: {uid: number; gid: number; maxBytes: number; signal: AbortSignal}) {
  const child = await startSession('tar', ['--create', '--file=-', '--format=pax', '--one-file-system', `--directory=${source}`, '.'], {
    as: {uid: o.uid, gid: o.gid},
    signal: o.signal,
  })
  child.stdin.end()
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const exited = child.exited.then((r) => r.exitCode)
  const dirs: {path: string; mode: number; mtime?: Date}[] = []
  const skipped: string[] = []
  let bytes = 0
  // Folders made so far: a context of many files in few folders makes each one once.
  const made = new Set<string>([root])
  const folder = async (dir: string) => {
    if (made.has(dir)) return
    await mkdir(dir, {recursive: true})
    made.add(dir)
  }
  const extract = tarStream.extract()
  child.stdout.pipe(extract)
  try {
    for await (const entry of extract) {
      const h = entry.header
      const rel = safeName(h.name)
      const path = rel === '' ? root : join(root, rel)
      switch (h.type) {
        case 'directory':
          await folder(path)
          dirs.push({path, mode: (h.mode ?? 0o755) & 0o777, mtime: h.mtime})
          entry.resume()
          break
        case 'file':
        case 'contiguous-file': {
          bytes += h.size ?? 0
          if (bytes > o.maxBytes) throw tooBig(o.maxBytes)
          await folder(dirname(path))
          const file = await open(path, 'wx', (h.mode ?? 0o644) & 0o777)
          try {
            for await (const chunk of entry) await file.write(chunk as Buffer)
            if (h.mtime) await file.utimes(h.mtime, h.mtime)
          } finally {
            await file.close()
          }
          break
        }
        case 'link': {
          // A second name of a file already unpacked: a copy, so nothing here links elsewhere.
          const target = join(root, safeName(h.linkname ?? ''))
          if (!(await lstat(target)).isFile()) throw badEntry(h.name, 'a hard link to something that is not a file')
          await folder(dirname(path))
          await copyFile(target, path, constants.COPYFILE_EXCL)
          entry.resume()
          break
        }
        case 'symlink':
          throw linkRefused(rel, h.linkname ?? '')
        default:
          skipped.push(rel)
          entry.resume()
      }
    }
    const code = await exited
    o.signal.throwIfAborted()
    if (code !== 0) {
      throw new ShienError(`Cannot read the build context ${source}: ${stderr.trim().split('\n')[0] ?? `tar exited ${code}`}.`, {
        code: 'BUILD_CONTEXT',
        exit: 'refused',
        suggestions: ['Every file in the context folder must be readable by you; leave out what is not (or move it elsewhere).'],
      })
    }
  } catch (error) {
    child.kill('SIGKILL')
    extract.destroy()
    await exited
    o.signal.throwIfAborted()
    throw error
  }
  for (const d of dirs.reverse()) {
    await chmod(d.path, d.mode | 0o700)
    if (d.mtime) await utimes(d.path, d.mtime, d.mtime)
  }
  return {bytes, skipped}
}

/** A tar entry name as a path inside the copy: relative, normalized, no `..`. */
function safeName(name: string): string {
  const normal = posix.normalize(name.replace(/^(\.\/)+/, ''))
  if (normal === '.' || normal === './' || normal === '') return ''
  if (name.includes('\0') || posix.isAbsolute(normal) || normal.split('/').includes('..')) throw badEntry(name, 'a name outside the context')
  return normal.replace(/\/$/, '')
}

function linkRefused(name: string, target: string): ShienError {
  return new ShienError(`The build context has a symbolic link: ${name} -> ${target}. Links are not accepted in build contexts.`, {
    code: 'BUILD_CONTEXT',
    exit: 'refused',
    suggestions: [`Replace ${name} with the file or folder it points to (cp -rL), or move it out of the context folder.`],
  })
}

function badEntry(name: string, why: string): ShienError {
  return new ShienError(`The build context has ${why}: ${name}.`, {code: 'BUILD_CONTEXT', exit: 'refused'})
}

function tooBig(maxBytes: number): ShienError {
  return new ShienError(`The build context holds more than ${Math.round(maxBytes / 1024 / 1024)} MiB.`, {
    code: 'BUILD_CONTEXT_TOO_BIG',
    exit: 'refused',
    suggestions: ['Build from a folder that holds only what the image needs.'],
  })
}
