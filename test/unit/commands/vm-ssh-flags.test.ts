import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi} from 'vitest'

import {assertBuildIsCurrent, shien} from '../../support/run-command.js'

// vm ssh, ssh-config and stop: command lines refused before any connection (the blade in
// ~/.ssh/config is an address nothing answers on, so reaching it would fail differently).
const home = mkdtempSync(join(tmpdir(), 'laptop-'))
const cwd = process.cwd()

beforeAll(() => {
  assertBuildIsCurrent()
  mkdirSync(join(home, '.ssh'))
  writeFileSync(join(home, '.ssh', 'config'), 'Host blade1\n  HostName 192.0.2.10\n  User e195701\n')
})
afterAll(() => rmSync(home, {recursive: true, force: true}))
beforeEach(() => {
  vi.stubEnv('HOME', home)
  vi.stubEnv('XDG_CONFIG_HOME', join(home, '.config'))
  vi.stubEnv('SHIEN_HOST', undefined)
  vi.stubEnv('SSH_AUTH_SOCK', '')
  process.chdir(home)
})
afterEach(() => {
  process.chdir(cwd)
  vi.unstubAllEnvs()
})

describe('shien vm ssh, ssh-config and stop: the command line', () => {
  it.each([
    ['--json without a command', ['vm', 'ssh', '01', '--host', 'blade1', '--json'], 'USAGE', 2],
    ['a slot that is not one', ['vm', 'ssh', '0x', '--host', 'blade1', '--json', '--', 'id'], 'BAD_SLOT', 2],
    ['no blade named', ['vm', 'ssh', '01', '--json', '--', 'id'], 'BAD_HOST', 2],
    ['a second argument before --', ['vm', 'ssh', '01', 'id', '--host', 'blade1', '--json'], 'USAGE', 2],
    ['an unknown flag', ['vm', 'ssh-config', '01', '--bogus', '--json'], 'USAGE', 2],
    ['a slot that is not one, for ssh-config', ['vm', 'ssh-config', '../x', '--host', 'blade1', '--json'], 'BAD_SLOT', 2],
    ['a timeout below 1 s', ['vm', 'stop', '01', '--timeout', '0', '--host', 'blade1', '--json'], 'USAGE', 2],
    ['a timeout above 600 s', ['vm', 'stop', '01', '--timeout', '601', '--host', 'blade1', '--json'], 'USAGE', 2],
    ['a timeout that is not a number', ['vm', 'stop', '01', '--timeout', 'soon', '--host', 'blade1', '--json'], 'USAGE', 2],
    ['stop with two slots', ['vm', 'stop', '01', '02', '--host', 'blade1', '--json'], 'USAGE', 2],
  ])('%s is refused with the error envelope', async (_what, args, code, exitCode) => {
    const r = await shien(args)
    expect(r.exitCode).toBe(exitCode)
    expect(Object.keys(r.json)).toEqual(['error'])
    expect(r.json.error).toMatchObject({code, exitCode})
  })

  it('takes words after -- as the command, even ones that look like its own flags', async () => {
    // --json after -- belongs to the command: not JSON output, and the slot is still checked first.
    const r = await shien(['vm', 'ssh', '0x', '--host', 'blade1', '--', 'ls', '--json'])
    expect(r.exitCode).toBe(2)
    expect(r.json).toBeUndefined()
    expect(r.stderr).toContain('Error (BAD_SLOT)')
  })
})
