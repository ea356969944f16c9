import {beforeAll, describe, expect, it} from 'vitest'

import {assertBuildIsCurrent, shien} from '../../support/run-command.js'

beforeAll(() => assertBuildIsCurrent())

describe('shien --help, in process', () => {
  it('lists the topics and top-level commands, not the hidden blade steps', async () => {
    const run = await shien(['--help'])
    expect(run.exitCode).toBe(0)
    expect(run.stdout).toMatch(/^TOPICS$/m)
    for (const topic of ['admin', 'box', 'cloud', 'container', 'vm']) expect(run.stdout).toMatch(new RegExp(`^  ${topic}\\s`, 'm'))
    for (const command of ['audit', 'init', 'push']) expect(run.stdout).toMatch(new RegExp(`^  ${command}\\s`, 'm'))
    expect(run.stdout).not.toMatch(/^  blade\s/m)
  })

  it('lists a topic\'s commands by their spaced names', async () => {
    const run = await shien(['vm', '--help'])
    expect(run.exitCode).toBe(0)
    for (const command of ['console', 'debug', 'define', 'destroy', 'dumpxml', 'list', 'start', 'templates', 'undefine']) {
      expect(run.stdout).toMatch(new RegExp(`^  vm ${command}\\s`, 'm'))
    }
  })

  it('still shows a hidden command\'s help when asked by name', async () => {
    const run = await shien(['blade', 'convert', '--help'])
    expect(run.exitCode).toBe(0)
    expect(run.stdout).toContain('$ shien blade convert')
    expect(run.stdout).toContain('--protocol=<value>')
  })

  it('shows a command\'s usage, arguments, flags and examples', async () => {
    const run = await shien(['push', '--help'])
    expect(run.exitCode).toBe(0)
    expect(run.stdout).toContain('Send a Vagrant box to the blade and run it there as a hardened VM.')
    expect(run.stdout).toMatch(/\$ shien push \[BOX\]/)
    expect(run.stdout).toMatch(/-s, --slot=<value>\s+VM slot on the blade/)
    expect(run.stdout).toContain('--json  Format output as json.')
    expect(run.stdout).toContain('$ shien push os101.box --host blade1 --slot 02')
  })

  it('takes the colon form of an id as well', async () => {
    const run = await shien(['vm:list', '--help'])
    expect(run.exitCode).toBe(0)
    expect(run.stdout).toContain('$ shien vm list')
  })

  it('prints the version', async () => {
    const run = await shien(['--version'])
    expect(run.exitCode).toBe(0)
    expect(run.stdout).toMatch(/^@ie-ryukyu\/shien\/0\.\d+\.\d+ /)
  })
})
