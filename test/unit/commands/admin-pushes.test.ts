import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {assertBuildIsCurrent, shien} from '../../support/run-command.js'

let root: string
let config: string
beforeAll(async () => {
  assertBuildIsCurrent()
  root = await mkdtemp(join(tmpdir(), 'shien-admin-pushes-'))
  config = join(root, 'config.json')
  await writeFile(config, JSON.stringify({storageRoot: root, runDir: join(root, 'run'), push: {concurrent: 2}}), {mode: 0o644})
})
afterAll(() => rm(root, {recursive: true, force: true}))

describe('shien admin pushes, in process (as root)', () => {
  it('prints the queue\'s report under --json', async () => {
    const run = await shien(['admin', 'pushes', '--json', '--config', config])
    expect(run.exitCode, run.stderr).toBe(0)
    expect(run.json).toEqual({bound: 2, running: 0, waiting: 0, places: []})
  })

  it('prints the table for people', async () => {
    const run = await shien(['admin', 'pushes', '--config', config])
    expect(run.stdout).toBe('Pushes on this blade: 0 of 2 running (push.concurrent), 0 waiting.\nNo heavy step is running or waiting.\n')
  })
})
