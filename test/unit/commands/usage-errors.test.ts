import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi} from 'vitest'

import {ExitCode} from '../../../src/errors.js'
import {assertBuildIsCurrent, shien} from '../../support/run-command.js'

// A laptop with a blade in ~/.ssh/config and a Vagrant project, and no SHIEN_HOST.
const home = mkdtempSync(join(tmpdir(), 'laptop-'))
const project = join(home, 'os101')
const cwd = process.cwd()

beforeAll(() => {
  assertBuildIsCurrent()
  mkdirSync(join(home, '.ssh'))
  writeFileSync(join(home, '.ssh', 'config'), 'Host blade1\n  HostName 192.0.2.10\n  Port 2200\n  User e195701\n')
  mkdirSync(project)
  writeFileSync(join(project, 'Vagrantfile'), 'Vagrant.configure("2") do |config|\n  config.vm.box = "debian/bookworm64"\nend\n')
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

/** The --json error envelope every command prints (README: "errors included"). */
function expectEnvelope(json: any, code: string, exitCode: number) {
  expect(Object.keys(json)).toEqual(['error'])
  expect(Object.keys(json.error).sort()).toEqual(['code', 'exitCode', 'message', 'suggestions'])
  expect(json.error).toMatchObject({code, exitCode})
}

describe('a wrong command line under --json', () => {
  it.each([
    ['an unknown flag', ['vm', 'list', '--bogus'], /^Nonexistent flag: --bogus$/, 'shien vm list --help'],
    ['a missing argument', ['vm', 'start'], /^Missing 1 required arg:\nslot /, 'shien vm start --help'],
    ['a missing required flag', ['init'], /Missing required flag host/, 'shien init --help'],
    ['a flag value out of range', ['push', 'x.box', '--channels', '0'], /--channels[\s\S]*greater than or equal to 1/, 'shien push --help'],
    ['a hidden blade step without --protocol', ['blade', 'hello'], /Missing required flag protocol/, 'shien blade hello --help'],
    ['a rule a command checks itself', ['audit', '--live', 'x.qcow2'], /^--live takes no paths/, 'shien audit --help'],
  ])('%s prints the USAGE envelope, not oclif\'s error object, and exits 2', async (_, args, message, help) => {
    const run = await shien([...args, '--json'])
    expect(run.exitCode).toBe(ExitCode.usage)
    expectEnvelope(run.json, 'USAGE', ExitCode.usage)
    expect(run.json.error.message).toMatch(message)
    expect(run.json.error.suggestions).toEqual([`${help} shows its arguments and flags.`])
    expect(run.stdout).not.toContain('"config"')
  })

  it('reports every problem of a push at once: no box, a bad slot, no blade', async () => {
    const run = await shien(['push', '--slot', '99x', '--json'])
    expect(run.exitCode).toBe(ExitCode.usage)
    expectEnvelope(run.json, 'BAD_PUSH', ExitCode.usage)
    expect(run.json.error.message).toMatch(/No box given and no Vagrantfile here[\s\S]*Slot "99x" is not a two-digit slot[\s\S]*No blade named/)
  })

  it('names the missing blade before connecting anywhere', async () => {
    const run = await shien(['vm', 'start', '01', '--json'])
    expect(run.exitCode).toBe(ExitCode.usage)
    expectEnvelope(run.json, 'BAD_HOST', ExitCode.usage)
  })
})

describe('a wrong command line without --json', () => {
  it('prints oclif\'s message as "Error (USAGE): ..." and "Try this:" on stderr, and exits 2', async () => {
    const run = await shien(['vm', 'list', '--bogus'])
    expect(run.exitCode).toBe(ExitCode.usage)
    expect(run.stdout).toBe('')
    expect(run.stderr).toBe('Error (USAGE): Nonexistent flag: --bogus\nTry this:\n  shien vm list --help shows its arguments and flags.\n')
  })

  it('prints "Error (CODE): ..." and "Try this:" on stderr for shien\'s own errors', async () => {
    const run = await shien(['push', 'nope.box', '--host', 'blade1'])
    expect(run.exitCode).toBe(ExitCode.usage)
    expect(run.stdout).toBe('')
    expect(run.stderr).toMatch(/^Error \(BAD_PUSH\): nope.box is not a file\.\nTry this:\n {2}shien push --help/)
  })
})

describe('shien init then shien push --dry-run, in process', () => {
  it('writes .shien.json and the stanza, and push plans from them', async () => {
    process.chdir(project)
    const init = await shien(['init', '--host', 'blade1', '--slot', '2', '--json'])
    expect(init.exitCode, init.stderr).toBe(0)
    expect(init.json).toMatchObject({stanzaAdded: true})
    expect(readFileSync(join(project, 'Vagrantfile'), 'utf8')).toContain('config.push.define "shien", strategy: "local-exec"')
    const plan = await shien(['push', '--dry-run', '--json'])
    expect(plan.exitCode, plan.stderr).toBe(0)
    expect(plan.json.plan).toMatchObject({slot: '02', name: 'os101', target: {hostName: '192.0.2.10', port: 2200, user: 'e195701'}})
  })
})

describe('shien container start, stop and rm, in process', () => {
  it.each([
    [['start', 'web']],
    [['stop', 'web']],
    [['rm', '-f', 'web']],
    [['rm', '--force', 'web']],
  ])('container %j parses its command line and then needs a blade', async (args) => {
    const run = await shien(['container', ...args, '--json'])
    expect(run.exitCode).toBe(ExitCode.usage)
    expectEnvelope(run.json, 'BAD_HOST', ExitCode.usage)
  })

  it('refuses --force on stop, which only rm takes', async () => {
    const run = await shien(['container', 'stop', '--force', 'web', '--json'])
    expectEnvelope(run.json, 'USAGE', ExitCode.usage)
    expect(run.json.error.message).toBe('Nonexistent flag: --force')
  })

  it('needs the container name', async () => {
    const run = await shien(['container', 'rm', '--json'])
    expectEnvelope(run.json, 'USAGE', ExitCode.usage)
    expect(run.json.error.message).toMatch(/^Missing 1 required arg:\nname /)
  })
})
