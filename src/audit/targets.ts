/**
 * Which images an audit covers: by default every `<root>/users/<account>/images/*.qcow2`; else
 * the files named, and every `*.qcow2` under the directories named. Names starting with a dot
 * are a push in progress or its rollback copy (slot-files.ts) and are left alone. Directory
 * symlinks are not followed; a symlink named `*.qcow2` is listed, so the gate reports it.
 */
import {lstat, readdir, realpath, stat} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'

import {badInput} from '../errors.js'
import {ACCOUNT_PATTERN, SLOT_PATTERN} from '../names.js'
import type {GateScope} from './image-gate.js'

export interface ImageTarget {
  /** The path with its folder resolved but not its last component (a symlink stays visible). */
  path: string
  account?: string
  slot?: string
  scope: GateScope
}

const MAX_DEPTH = 6
const MAX_FILES = 10_000
const IMAGE_NAME = /^[^.].*\.qcow2$/

async function isRealDir(path: string): Promise<boolean> {
  return lstat(path).then((s) => s.isDirectory(), () => false)
}

/** Every account's images under the storage root. */
export async function storageImages(root: string): Promise<string[]> {
  const users = join(root, 'users')
  const out: string[] = []
  for (const account of (await readdir(users).catch(() => [] as string[])).sort()) {
    const images = join(users, account, 'images')
    if (!(await isRealDir(join(users, account))) || !(await isRealDir(images))) continue
    for (const name of (await readdir(images)).sort()) if (IMAGE_NAME.test(name)) out.push(join(images, name))
  }
  return out
}

/** The files named, and the images found under the directories named. */
export async function namedImages(paths: string[]): Promise<string[]> {
  const out: string[] = []
  for (const path of paths) {
    const st = await lstat(path).catch(() => {
      throw badInput('AUDIT_NO_SUCH_PATH', `${path} does not exist.`, ['Name an image (.qcow2) or a folder holding images.'])
    })
    if (st.isDirectory()) await walk(path, 0, out)
    else out.push(path)
  }
  return out
}

async function walk(dir: string, depth: number, out: string[]): Promise<void> {
  if (depth > MAX_DEPTH || out.length >= MAX_FILES) return
  for (const entry of (await readdir(dir, {withFileTypes: true})).sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) await walk(path, depth + 1, out)
    else if ((entry.isFile() || entry.isSymbolicLink()) && IMAGE_NAME.test(entry.name)) out.push(path)
  }
}

const IN_STORAGE = /^(.*)\/users\/([^/]+)\/images\/([^/]+)\.qcow2$/

/**
 * Account, slot and gate scope of an image. The account comes from the path
 * (`.../users/<account>/images/<slot>.qcow2`), its uid from the system, or else from the owner of
 * its storage folder (which the layout gives to the account).
 */
export async function describeTarget(
  raw: string, boxesDir: string, lookupUid: (account: string) => Promise<number | undefined>,
): Promise<ImageTarget> {
  const path = join(await realpath(dirname(raw)), basename(raw))
  const m = IN_STORAGE.exec(path)
  if (!m || !ACCOUNT_PATTERN.test(m[2])) return {path, scope: {imagesDir: dirname(path), boxesDir}}
  const [, root, account, name] = m
  const uid = (await lookupUid(account)) ?? (await stat(join(root, 'users', account)).then((s) => s.uid, () => undefined))
  return {
    path, account, slot: SLOT_PATTERN.test(name) ? name : undefined,
    scope: {uid, imagesDir: dirname(path), boxesDir: join(root, 'boxes')},
  }
}

/** Published boxes, newest first (the ones students start from now matter most), at most `max`. */
export async function publishedBoxes(boxesDir: string, max: number): Promise<{read: string[]; skipped: number}> {
  const found: string[] = []
  const visit = async (dir: string, depth: number): Promise<void> => {
    if (depth > MAX_DEPTH || found.length >= MAX_FILES) return
    for (const entry of await readdir(dir, {withFileTypes: true}).catch(() => [])) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) await visit(path, depth + 1)
      else if (entry.isFile() && entry.name === 'box.img') found.push(path)
    }
  }
  await visit(boxesDir, 0)
  const withTime = await Promise.all(found.map(async (p) => ({p, t: (await stat(p)).mtimeMs})))
  const sorted = withTime.sort((a, b) => b.t - a.t || a.p.localeCompare(b.p)).map((x) => x.p)
  return {read: sorted.slice(0, max), skipped: Math.max(0, sorted.length - max)}
}
