import {lstat, mkdtemp, readFile, readdir, rm, symlink, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {clusterPaths} from '../../../src/config/storage-layout.js'
import {openDrainedBlades} from '../../../src/privileged/drained-blades.js'

let root: string
let drained: string
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'shien-drained-'))
  drained = clusterPaths(root).drained
})
afterEach(() => rm(root, {recursive: true, force: true}))

describe('drained blades', () => {
  it('marks a blade drained in a root-owned file, keeps the first mark, and lists the marks by name', async () => {
    const marks = await openDrainedBlades(root)
    const first = await marks.drain('blade2', 'admin1')
    expect(first).toMatchObject({blade: 'blade2', by: 'admin1'})
    expect(JSON.parse(await readFile(join(drained, 'blade2.json'), 'utf8'))).toEqual(first)
    const info = await lstat(join(drained, 'blade2.json'))
    expect([info.isFile(), info.uid, info.mode & 0o022]).toEqual([true, 0, 0])
    expect(await marks.drain('blade2', 'admin2')).toEqual(first)
    await marks.drain('blade1', 'admin2')
    expect((await marks.list()).map((m) => [m.blade, m.by])).toEqual([['blade1', 'admin2'], ['blade2', 'admin1']])
  })

  it('undrains a blade by removing its mark; undraining one that is not drained changes nothing', async () => {
    const marks = await openDrainedBlades(root)
    await marks.drain('blade2', 'admin1')
    expect(await marks.undrain('blade2')).toMatchObject({blade: 'blade2'})
    expect(await readdir(drained)).toEqual([])
    expect(await marks.undrain('blade2')).toBeUndefined()
    expect(await marks.list()).toEqual([])
  })

  it('refuses a mark that is a symlink or names another blade, and a drained folder that is a symlink', async () => {
    const marks = await openDrainedBlades(root)
    await writeFile(join(root, 'elsewhere.json'), JSON.stringify({blade: 'blade1', since: 'x', by: 'student'}))
    await symlink(join(root, 'elsewhere.json'), join(drained, 'blade1.json'))
    await expect(marks.list()).rejects.toMatchObject({code: 'DRAIN_MARK_INVALID', message: expect.stringContaining('is a symlink')})
    await expect(marks.undrain('blade1')).rejects.toMatchObject({code: 'DRAIN_MARK_INVALID'})
    expect((await lstat(join(drained, 'blade1.json'))).isSymbolicLink()).toBe(true)
    await rm(join(drained, 'blade1.json'))
    await writeFile(join(drained, 'blade1.json'), JSON.stringify({blade: 'blade3', since: 'x', by: 'admin1'}))
    await expect(marks.drain('blade1', 'admin1')).rejects.toMatchObject({code: 'DRAIN_MARK_INVALID', message: expect.stringContaining('it names blade3')})
    await rm(drained, {recursive: true})
    await symlink(root, drained)
    await expect(openDrainedBlades(root)).rejects.toMatchObject({code: 'CLUSTER_DIR_UNSAFE', message: expect.stringContaining('it is a symlink')})
  })
})
