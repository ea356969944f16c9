import {chmod, chown, mkdir, mkdtemp, rm, utimes, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {assertBuildIsCurrent, shien} from '../../support/run-command.js'

let root: string
let config: string
beforeAll(async () => {
  assertBuildIsCurrent()
  root = await mkdtemp(join(tmpdir(), 'shien-admin-clean-'))
  await chmod(root, 0o755)
  const incoming = join(root, 'users', 'e195701', 'incoming')
  await mkdir(incoming, {recursive: true})
  for (const dir of [join(root, 'users', 'e195701'), incoming]) await chown(dir, 40201, 40201)
  const box = join(incoming, 'web.box')
  await writeFile(box, 'box')
  const when = new Date(Date.now() - 10 * 24 * 60 * 60 * 1000)
  await utimes(box, when, when)
  config = join(root, 'config.json')
  await writeFile(config, JSON.stringify({storageRoot: root}), {mode: 0o644})
})
afterAll(() => rm(root, {recursive: true, force: true}))

describe('shien admin clean-incoming, in process (as root)', () => {
  it('lists under --json what --dry-run would remove', async () => {
    const run = await shien(['admin', 'clean-incoming', '--dry-run', '--json', '--config', config])
    expect(run.exitCode, run.stderr).toBe(0)
    expect(run.json).toMatchObject({olderThanDays: 7, dryRun: true, bytes: 3, problems: [], removed: [{account: 'e195701', file: 'web.box', bytes: 3}]})
  })

  it('prints what it removed for people', async () => {
    const run = await shien(['admin', 'clean-incoming', '--config', config])
    expect(run.stdout).toMatch(/^Removed 1 upload\(s\) older than 7 day\(s\), 3 bytes\.\n {2}e195701\/incoming\/web\.box {2}3 bytes, last changed /)
  })

  it('refuses a negative --older-than as a usage error', async () => {
    const run = await shien(['admin', 'clean-incoming', '--older-than', '-1', '--json', '--config', config])
    expect(run.exitCode).toBe(2)
  })
})
