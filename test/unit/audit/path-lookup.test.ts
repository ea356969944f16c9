/** The folders a path's lookup goes through, symlinks followed by hand, on real folders and links. */
import {mkdir, mkdtemp, realpath, rm, symlink, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, expect, it} from 'vitest'

import {lookupFolders} from '../../../src/audit/path-lookup.js'

let t: string
const under = async (path: string) => (await lookupFolders(path)).filter((d) => d.startsWith(t)).map((d) => d.slice(t.length) || '/')

beforeAll(async () => {
  t = await realpath(await mkdtemp(join(tmpdir(), 'shien-lookup-')))
  await mkdir(join(t, 'a', 'b'), {recursive: true})
  await mkdir(join(t, 'x'))
  await writeFile(join(t, 'a', 'b', 'file'), '')
  await symlink('a/b', join(t, 'rel'))
  await symlink(join(t, 'a'), join(t, 'x', 'abs'))
  await symlink('../a', join(t, 'x', 'up'))
  await symlink('loop2', join(t, 'loop1'))
  await symlink('loop1', join(t, 'loop2'))
})

afterAll(async () => {
  if (t) await rm(t, {recursive: true, force: true})
})

it('lists every folder above a plain path, from /', async () => {
  const all = await lookupFolders(join(t, 'a', 'b', 'file'))
  expect(all[0]).toBe('/')
  expect(await under(join(t, 'a', 'b', 'file'))).toEqual(['/', '/a', '/a/b'])
})

it('follows relative and absolute links by hand, listing the folders holding the links too', async () => {
  expect(await under(join(t, 'rel', 'file'))).toEqual(['/', '/a', '/a/b'])
  expect(await under(join(t, 'x', 'abs', 'b', 'file'))).toEqual(['/', '/x', '/a', '/a/b'])
})

it('takes .. from the folder a link led to, as the kernel does', async () => {
  // x/up is a/ (through ../a): x/up/.. is the top, not x (path.join would say x: not used here).
  expect(await under(`${t}/x/up/../rel/file`)).toEqual(['/', '/x', '/a', '/a/b'])
  await expect(lookupFolders(`${t}/a/b/../../x/up/../missing`)).rejects.toMatchObject({code: 'ENOENT'})
  expect(await under(`${t}/x/up/../x/abs/b/file`)).toEqual(['/', '/x', '/a', '/a/b'])
})

it('refuses a loop of links and a missing component', async () => {
  await expect(lookupFolders(join(t, 'loop1', 'file'))).rejects.toMatchObject({code: 'PATH_LOOP'})
  await expect(lookupFolders(join(t, 'missing', 'file'))).rejects.toMatchObject({code: 'ENOENT'})
})
