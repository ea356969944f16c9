import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {existsSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import type {PipelineEvent} from '../../../src/pipeline/events.js'
import {runStages} from '../../../src/pipeline/runner.js'
import type {PushContext} from '../../../src/push/context.js'
import type {PushPlan} from '../../../src/push/plan.js'
import {packageStage} from '../../../src/push/stages-local.js'

// The package stage with the real Vagrant, in a project whose VM was never brought up: what the
// student sees is that it will shut the VM down, then Vagrant's own words, indented.
let project: string
const saved = process.env.VAGRANT_HOME

beforeAll(async () => {
  project = await mkdtemp(join(tmpdir(), 'shien-vagrant-package-'))
  await writeFile(join(project, 'Vagrantfile'), 'Vagrant.configure("2") do |config|\n  config.vm.box = "os101/debian12"\nend\n')
  process.env.VAGRANT_HOME = join(project, '.vagrant.d')
})
afterAll(async () => {
  if (saved === undefined) delete process.env.VAGRANT_HOME
  else process.env.VAGRANT_HOME = saved
  await rm(project, {recursive: true, force: true})
})

describe('vagrant package, as the push runs it', () => {
  it('says first that it shuts the VM down, shows what Vagrant says indented, and refuses a run that wrote no box', async () => {
    const plan = {projectDir: project, name: 'web', slot: '01', keepDir: join(project, '.vagrant', 'shien'), repackage: false} as PushPlan
    const ctx = {plan, out: {}, made: {}, waitedMs: {}} as unknown as PushContext
    const events: PipelineEvent[] = []
    const error = await runStages([packageStage], ctx, {signal: new AbortController().signal, onEvent: (e) => events.push(e)}).catch((e: unknown) => e)
    const notes = events.flatMap((e) => (e.type === 'note' ? [e.message] : []))
    expect(notes[0]).toBe('vagrant package shuts the VM down to export its disk; start it again afterwards with vagrant up')
    // Vagrant's lines, as it printed them (whichever provider this machine has), under the stage.
    expect(notes.slice(1).length).toBeGreaterThan(0)
    for (const line of notes.slice(1)) expect(line).toMatch(/^ {2}\S/)
    expect(notes.join('\n')).toMatch(/==> default: /)
    expect(error).toMatchObject({code: 'VAGRANT_PACKAGE', message: expect.stringMatching(/^vagrant package (wrote no box|failed): \S/)})
    // Nothing is kept for a next run to take.
    expect(existsSync(join(plan.keepDir!, 'web.box'))).toBe(false)
  }, 60_000)
})
