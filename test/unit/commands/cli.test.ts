import {copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {runShien} from '../../support/cli.js'

const homes: string[] = []
afterAll(() => {
  for (const home of homes) rmSync(home, {recursive: true, force: true})
})

function laptop() {
  const home = mkdtempSync(join(tmpdir(), 'laptop-'))
  homes.push(home)
  mkdirSync(join(home, '.ssh'))
  writeFileSync(join(home, '.ssh', 'config'), 'Host blade1\n  HostName 192.0.2.10\n  Port 2200\n  User e195701\n')
  const project = join(home, 'os101')
  mkdirSync(project)
  writeFileSync(join(project, 'Vagrantfile'), 'Vagrant.configure("2") do |config|\n  config.vm.box = "debian/bookworm64"\nend\n')
  return {home, project}
}

describe('shien init then shien push --dry-run', () => {
  it('writes .shien.json and the stanza, and push plans from them', async () => {
    const {home, project} = laptop()
    const init = await runShien(['init', '--host', 'blade1', '--slot', '2', '--json'], {home, cwd: project})
    expect(init.exitCode, init.stderr).toBe(0)
    expect(init.json.stanzaAdded).toBe(true)
    expect(readFileSync(join(project, 'Vagrantfile'), 'utf8')).toContain('config.push.define "shien", strategy: "local-exec"')
    const plan = await runShien(['push', '--dry-run', '--json'], {home, cwd: project})
    expect(plan.exitCode, plan.stderr).toBe(0)
    expect(plan.json.plan).toMatchObject({slot: '02', name: 'os101', target: {hostName: '192.0.2.10', port: 2200, user: 'e195701'}})
  })

  it('reports bad flags with exit 2 and every problem in one JSON error', async () => {
    const {home} = laptop()
    const run = await runShien(['push', 'nope.box', '--slot', 'x1', '--json'], {home})
    expect(run.exitCode).toBe(2)
    expect(run.json.error.code).toBe('BAD_PUSH')
    expect(run.json.error.message).toMatch(/nope.box is not a file[\s\S]*Slot "x1"[\s\S]*No blade named/)
  })

  it('plans a delta against the box Vagrant recorded, and refuses a malformed --base with exit 2', async () => {
    const {home, project} = laptop()
    const machine = join(project, '.vagrant', 'machines', 'default', 'virtualbox')
    mkdirSync(machine, {recursive: true})
    copyFileSync(new URL('../../fixtures/vagrant-project/box_meta', import.meta.url), join(machine, 'box_meta'))
    const plan = await runShien(['push', '--host', 'blade1', '--dry-run', '--json'], {home, cwd: project})
    expect(plan.exitCode, plan.stderr).toBe(0)
    expect(plan.json.plan).toMatchObject({base: {kind: 'base', box: 'os101/debian12', version: '2026.1.0', from: 'box_meta'}, keepDir: join(project, '.vagrant', 'shien'), repackage: false})
    const full = await runShien(['push', '--host', 'blade1', '--full', '--repackage', '--dry-run', '--json'], {home, cwd: project})
    expect(full.json.plan).toMatchObject({base: {kind: 'full'}, repackage: true})
    const bad = await runShien(['push', '--host', 'blade1', '--base', 'os101/debian12', '--json'], {home, cwd: project})
    expect(bad.exitCode).toBe(2)
    expect(bad.json.error).toMatchObject({code: 'BAD_PUSH', message: expect.stringContaining('is not ORG/NAME@VERSION')})
  })

  it('prints human errors as "Error (CODE): ..." and "Try this:" on stderr', async () => {
    const {home} = laptop()
    const run = await runShien(['push', 'nope.box', '--host', 'blade1'], {home})
    expect(run.exitCode).toBe(2)
    expect(run.stdout).toBe('')
    expect(run.stderr).toMatch(/^Error \(BAD_PUSH\): nope.box is not a file\.\nTry this:\n {2}shien push --help/)
  })
})
