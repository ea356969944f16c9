/**
 * `shien admin clean-incoming` over real folders owned by real uids (the test runs as root, as
 * the command does), with the attacks a student can make on their own folder: links to other
 * students' or root's files and folders, planted in place of a file or of incoming/ itself.
 */
import {chmodSync, chownSync, existsSync, lutimesSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {cleanIncoming} from '../../../src/admin/clean-incoming.js'

const DAY = 24 * 60 * 60 * 1000
const UIDS = {alice: 40101, bob: 40102, abby: 40103, dave: 40104}
let root: string
let configPath: string

const old = (days: number) => new Date(Date.now() - days * DAY)

function account(name: keyof typeof UIDS): string {
  const uid = UIDS[name]
  const home = join(root, 'users', name)
  mkdirSync(join(home, 'incoming'), {recursive: true, mode: 0o700})
  for (const dir of [home, join(home, 'incoming')]) {
    chownSync(dir, uid, uid)
    chmodSync(dir, 0o700)
  }
  return join(home, 'incoming')
}

function upload(dir: string, name: string, daysOld: number, uid: number): string {
  const path = join(dir, name)
  writeFileSync(path, 'box bytes')
  chownSync(path, uid, uid)
  utimesSync(path, old(daysOld), old(daysOld))
  return path
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'shien-clean-incoming-'))
  chmodSync(root, 0o755)
  mkdirSync(join(root, 'users'), {mode: 0o755})
  configPath = join(root, 'config.json')
  writeFileSync(configPath, JSON.stringify({storageRoot: root, push: {keepIncomingDays: 7}}), {mode: 0o644})
})

afterEach(() => rmSync(root, {recursive: true, force: true}))

const run = (o: {olderThanDays?: number; dryRun?: boolean; uid?: number} = {}) =>
  cleanIncoming({configPath, uid: o.uid ?? 0, olderThanDays: o.olderThanDays, dryRun: o.dryRun ?? false, signal: new AbortController().signal})

describe('shien admin clean-incoming', () => {
  it('removes every account\'s uploads older than push.keepIncomingDays, as their owner, and lists them', async () => {
    const alice = account('alice')
    const bob = account('bob')
    upload(alice, 'web.box', 8, UIDS.alice)
    upload(alice, 'new.box.part', 1, UIDS.alice)
    upload(bob, 'os.delta', 30, UIDS.bob)
    const report = await run()
    expect(report.olderThanDays).toBe(7)
    expect(report.removed.map((r) => `${r.account}/${r.file}`)).toEqual(['alice/web.box', 'bob/os.delta'])
    expect(report.bytes).toBe(18)
    expect(report.problems).toEqual([])
    expect(existsSync(join(alice, 'web.box'))).toBe(false)
    expect(existsSync(join(alice, 'new.box.part'))).toBe(true)
    expect(existsSync(join(bob, 'os.delta'))).toBe(false)
  })

  it('with --dry-run lists the same and removes nothing; --older-than overrides the configuration', async () => {
    const alice = account('alice')
    upload(alice, 'web.box', 3, UIDS.alice)
    expect((await run({dryRun: true})).removed).toEqual([])
    const dry = await run({dryRun: true, olderThanDays: 2})
    expect(dry.removed.map((r) => r.file)).toEqual(['web.box'])
    expect(existsSync(join(alice, 'web.box'))).toBe(true)
  })

  it('never follows a link a student planted: a file link, incoming/ as a link to another student\'s or to root\'s folder', async () => {
    const alice = account('alice')
    const bob = account('bob')
    const bobsBox = upload(bob, 'mine.box', 1, UIDS.bob)
    // A root file, old, linked from alice's incoming/.
    const secret = join(root, 'secret')
    writeFileSync(secret, 'root only')
    utimesSync(secret, old(30), old(30))
    symlinkSync(secret, join(alice, 'evil.box'))
    lutimesSync(join(alice, 'evil.box'), old(30), old(30))
    // abby's incoming/ is a link to bob's (abby's pass comes first); dave's to a folder of root's holding old files.
    const abbyHome = join(root, 'users', 'abby')
    account('abby')
    rmSync(join(abbyHome, 'incoming'), {recursive: true})
    symlinkSync(bob, join(abbyHome, 'incoming'))
    const rootDir = join(root, 'root-files')
    mkdirSync(rootDir)
    const rootFile = join(rootDir, 'old.box')
    writeFileSync(rootFile, 'root')
    utimesSync(rootFile, old(30), old(30))
    account('dave')
    rmSync(join(root, 'users', 'dave', 'incoming'), {recursive: true})
    symlinkSync(rootDir, join(root, 'users', 'dave', 'incoming'))
    utimesSync(bobsBox, old(30), old(30))

    const report = await run()
    expect(readFileSync(secret, 'utf8')).toBe('root only')
    expect(readFileSync(rootFile, 'utf8')).toBe('root')
    // bob's old box goes once, in bob's own pass, never in abby's.
    expect(report.removed.map((r) => `${r.account}/${r.file}`)).toEqual(['bob/mine.box'])
  })

  it('leaves alone an account folder that is a link or root\'s, and says so', async () => {
    const elsewhere = join(root, 'elsewhere')
    mkdirSync(join(elsewhere, 'incoming'), {recursive: true})
    const kept = join(elsewhere, 'incoming', 'old.box')
    writeFileSync(kept, 'x')
    utimesSync(kept, old(30), old(30))
    symlinkSync(elsewhere, join(root, 'users', 'mallory'))
    mkdirSync(join(root, 'users', 'rooty', 'incoming'), {recursive: true})
    const report = await run()
    expect(report.problems).toEqual([
      {account: 'mallory', reason: expect.stringContaining('is not a folder (a symlink?)')},
      {account: 'rooty', reason: expect.stringContaining('is owned by root')},
    ])
    expect(existsSync(kept)).toBe(true)
  })

  it('refuses to run as anyone but root', async () => {
    await expect(run({uid: 1000})).rejects.toMatchObject({code: 'NOT_ROOT', exitCode: 6})
  })
})
