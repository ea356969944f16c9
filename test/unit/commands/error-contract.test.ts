// Every command of shien, hidden ones and those that come from oclif's plugins included, keeps one
// error contract for a bad command line: under --json only {"error": {code, message, exitCode,
// suggestions}}, short, and exit 2; without it "Error (USAGE): ..." and "Try this:" on stderr.
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {type Command, Config} from '@oclif/core'
import {afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi} from 'vitest'

import {ExitCode} from '../../../src/errors.js'
import {assertBuildIsCurrent, ROOT, shien} from '../../support/run-command.js'

const home = mkdtempSync(join(tmpdir(), 'laptop-'))
let config: Config

beforeAll(async () => {
  assertBuildIsCurrent()
  config = await Config.load(ROOT)
})
afterAll(() => rmSync(home, {recursive: true, force: true}))
beforeEach(() => {
  vi.stubEnv('HOME', home)
  vi.stubEnv('XDG_CONFIG_HOME', join(home, '.config'))
  vi.stubEnv('XDG_CACHE_HOME', join(home, '.cache'))
  vi.stubEnv('SHIEN_SKIP_NEW_VERSION_CHECK', 'true')
  vi.stubEnv('SHIEN_HOST', undefined)
})
afterEach(() => vi.unstubAllEnvs())

/** An envelope of exactly the four fields, with the code and exit code, printed in under 1 KB. */
function expectUsageEnvelope(run: {exitCode: number; stdout: string; json: any}) {
  expect(run.exitCode).toBe(ExitCode.usage)
  expect(run.stdout.length).toBeLessThan(1024)
  expect(Object.keys(run.json)).toEqual(['error'])
  expect(Object.keys(run.json.error)).toEqual(['code', 'message', 'exitCode', 'suggestions'])
  expect(run.json.error).toMatchObject({code: 'USAGE', exitCode: ExitCode.usage})
  expect(run.json.error.suggestions.length).toBeGreaterThan(0)
}

/** A value the flag's options or parser refuses, or undefined when the flag takes any string. */
async function badValue(flag: Command.Flag.Any): Promise<string | undefined> {
  if (flag.type !== 'option') return undefined
  if (flag.options) return 'not-one-of-the-options'
  try {
    await flag.parse('not-a-value', {} as never, flag as never)
    return undefined
  } catch {
    return 'not-a-value'
  }
}

const words = (id: string) => id.split(':')

describe('every command, under --json', () => {
  it('lists the commands of shien and of the oclif plugins, hidden ones too', () => {
    const ids = config.commands.map((command) => command.id)
    for (const id of ['push', 'blade:convert', 'vm:list', 'help', 'version', 'commands', 'autocomplete', 'autocomplete:script']) expect(ids).toContain(id)
  })

  it('refuses an unknown flag with the USAGE envelope, exit 2, and names the flag', async () => {
    expect(config.commands.length).toBeGreaterThan(40)
    for (const command of config.commands) {
      const run = await shien([...words(command.id), '--frobnicate', '--json'])
      expect.soft(run.json?.error?.message, command.id).toMatch(/^Nonexistent flags?: --frobnicate/)
      expectUsageEnvelope(run)
      expect(run.json.error.suggestions.at(-1)).toBe(`shien ${words(command.id).join(' ')} --help shows its arguments and flags.`)
    }
  })

  it('refuses a value a flag\'s options or parser rejects with the USAGE envelope and exit 2, naming the flag', async () => {
    let tried = 0
    for (const command of config.commands) {
      const loaded = await command.load()
      for (const [name, flag] of Object.entries(loaded.flags ?? {})) {
        const value = await badValue(flag)
        if (value === undefined) continue
        tried++
        const run = await shien([...words(command.id), `--${name}`, value, '--json'])
        expect.soft(run.json?.error?.message, `${command.id} --${name}`).toMatch(new RegExp(`--${name}|${value}`))
        expectUsageEnvelope(run)
      }
      for (const arg of Object.values(loaded.args ?? {})) {
        if (!arg.options) continue
        tried++
        const run = await shien([...words(command.id), 'not-one-of-the-options', '--json'])
        expect(run.json.error.message).toMatch(/Expected not-one-of-the-options to be one of/)
        expectUsageEnvelope(run)
      }
    }
    // --channels, --memory, --cpus and the like, autocomplete's shell, ...: the loop above is not empty.
    expect(tried).toBeGreaterThan(5)
  })
})

describe('a wrong command line without --json', () => {
  it('is "Error (USAGE): ..." and "Try this:" on stderr, and exit 2, for every command', async () => {
    for (const command of config.commands) {
      const run = await shien([...words(command.id), '--frobnicate'])
      expect(run.exitCode, command.id).toBe(ExitCode.usage)
      expect(run.stdout, command.id).toBe('')
      expect(run.stderr, command.id).toMatch(/^Error \(USAGE\): Nonexistent flag: --frobnicate\nTry this:\n/)
      expect(run.stderr, command.id).toContain(`  shien ${words(command.id).join(' ')} --help shows its arguments and flags.\n`)
    }
  })

  it('prints "Error (USAGE): ..." and "Try this:" with the nearest flag on stderr, nothing on stdout, and exits 2', async () => {
    const run = await shien(['push', '--chanels', '3'])
    expect(run.exitCode).toBe(ExitCode.usage)
    expect(run.stdout).toBe('')
    expect(run.stderr).toBe('Error (USAGE): Nonexistent flag: --chanels\nTry this:\n  Did you mean --channels?\n  shien push --help shows its arguments and flags.\n')
  })

  it('does the same for a plugin\'s command', async () => {
    const run = await shien(['autocomplete', 'fish'])
    expect(run.exitCode).toBe(ExitCode.usage)
    expect(run.stderr).toMatch(/^Error \(USAGE\): Expected fish to be one of: zsh, bash, powershell\nTry this:\n {2}shien autocomplete --help/)
  })
})

describe('a word that is no command', () => {
  it('is a USAGE error naming the nearest command, under --json', async () => {
    const run = await shien(['vm', 'lst', '--json'])
    expectUsageEnvelope(run)
    expect(run.json.error.message).toBe('"vm lst" is not a shien command.')
    expect(run.json.error.suggestions).toEqual(['Did you mean "shien vm list"?', 'shien help vm lists the commands.'])
  })

  it('suggests no command when none is near, and says so on stderr without --json', async () => {
    const run = await shien(['frobnicate'])
    expect(run.exitCode).toBe(ExitCode.usage)
    expect(run.stdout).toBe('')
    expect(run.stderr).toBe('Error (USAGE): "frobnicate" is not a shien command.\nTry this:\n  shien help lists the commands.\n')
  })

  it('takes a flag where the command should be as an unknown flag', async () => {
    const run = await shien(['--frobnicate', '--json'])
    expectUsageEnvelope(run)
    expect(run.json.error.message).toBe('Nonexistent flag: --frobnicate')
  })
})
