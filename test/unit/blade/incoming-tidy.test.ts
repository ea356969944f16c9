import {existsSync, lstatSync, lutimesSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {prepareUpload} from '../../../src/blade/incoming.js'
import {tidySlot} from '../../../src/blade/slot-files.js'
import {DEFAULT_BLADE_CONFIG} from '../../../src/config/blade-config.js'
import {userPaths} from '../../../src/config/storage-layout.js'

const DAY = 24 * 60 * 60 * 1000
let root: string
let ctx: {account: string; config: typeof DEFAULT_BLADE_CONFIG; paths: ReturnType<typeof userPaths>}
let incoming: string

function file(name: string, daysOld = 0, content = 'x'): string {
  const path = join(incoming, name)
  writeFileSync(path, content)
  const when = new Date(Date.now() - daysOld * DAY)
  utimesSync(path, when, when)
  return path
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'shien-incoming-'))
  ctx = {account: 'e195701', config: {...DEFAULT_BLADE_CONFIG, storageRoot: root, push: {keepIncomingDays: 7, reserveGiB: 0}}, paths: userPaths(root, 'e195701')}
  incoming = ctx.paths.incoming
  mkdirSync(incoming, {recursive: true})
  mkdirSync(ctx.paths.images, {recursive: true})
})

afterEach(() => rmSync(root, {recursive: true, force: true}))

describe('old uploads in incoming/', () => {
  it('a push removes the caller\'s uploads older than push.keepIncomingDays first, its own upload aside, and says which', async () => {
    file('old.box', 8)
    file('old.delta.part', 30)
    file('.old.box.slot', 8)
    file('recent.box', 6)
    file('web.box.part', 20)
    mkdirSync(join(incoming, '.old.work-abc'))
    const when = new Date(Date.now() - 9 * DAY)
    utimesSync(join(incoming, '.old.work-abc'), when, when)
    const prepared = await prepareUpload(ctx, 'web', 10, 'box', '02')
    expect(prepared.removedOld.sort()).toEqual(['.old.box.slot', '.old.work-abc', 'old.box', 'old.delta.part'])
    expect(readdirSync(incoming).sort()).toEqual(['.web.box.slot', 'recent.box', 'web.box.part'])
    expect(JSON.parse(readFileSync(join(incoming, '.web.box.slot'), 'utf8'))).toEqual({slot: '02'})
    // What the resume uses is reported as it was.
    expect(prepared.partSize).toBe(1)
  })

  it('never follows a link: an old symlink goes, what it points at stays', async () => {
    const victim = join(root, 'victim')
    writeFileSync(victim, 'keep')
    symlinkSync(victim, join(incoming, 'link.box'))
    const when = new Date(Date.now() - 30 * DAY)
    // lutimes: the link's own time, not its target's.
    lutimesSync(join(incoming, 'link.box'), when, when)
    const victimDir = join(root, 'victim-dir')
    mkdirSync(victimDir)
    writeFileSync(join(victimDir, 'data'), 'keep')
    symlinkSync(victimDir, join(incoming, '.x.work-1'))
    lutimesSync(join(incoming, '.x.work-1'), when, when)
    await prepareUpload(ctx, 'web', 10)
    expect(lstatSync(join(incoming, 'link.box'), {throwIfNoEntry: false})).toBeUndefined()
    expect(lstatSync(join(incoming, '.x.work-1'), {throwIfNoEntry: false})).toBeUndefined()
    expect(readFileSync(victim, 'utf8')).toBe('keep')
    expect(readFileSync(join(victimDir, 'data'), 'utf8')).toBe('keep')
  })

  it('a good push of a slot removes every upload made for that slot, whatever its name, and no other slot\'s', async () => {
    await prepareUpload(ctx, 'first-try', 10, 'box', '02')
    file('first-try.box')
    await prepareUpload(ctx, 'renamed', 10, 'delta', '02')
    file('renamed.delta.part')
    await prepareUpload(ctx, 'other', 10, 'box', '03')
    file('other.box')
    await prepareUpload(ctx, 'web', 10, 'box', '02')
    file('web.box')
    await tidySlot(ctx, '02', 'web')
    expect(readdirSync(incoming).sort()).toEqual(['.other.box.slot', 'other.box'])
  })

  it('takes a slot note only from a regular file', async () => {
    file('theirs.box')
    symlinkSync(join(root, 'nowhere'), join(incoming, '.theirs.box.slot'))
    await tidySlot(ctx, '02')
    expect(existsSync(join(incoming, 'theirs.box'))).toBe(true)
  })
})
