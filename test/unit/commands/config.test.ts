import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi} from 'vitest'

import {assertBuildIsCurrent, shien} from '../../support/run-command.js'

let home: string
let file: string
beforeAll(() => {
  assertBuildIsCurrent()
  home = mkdtempSync(join(tmpdir(), 'shien-config-cmd-'))
  file = join(home, 'xdg', 'shien', 'config.json')
})
afterAll(() => rmSync(home, {recursive: true, force: true}))
beforeEach(() => {
  vi.stubEnv('HOME', home)
  vi.stubEnv('XDG_CONFIG_HOME', join(home, 'xdg'))
  vi.stubEnv('SHIEN_SKIP_NEW_VERSION_CHECK', 'true')
  vi.stubEnv('SHIEN_HOST', undefined)
})
afterEach(() => vi.unstubAllEnvs())

describe('shien config, in process', () => {
  it('path, set, get, list and unset, with --json and for people', async () => {
    expect((await shien(['config', 'path', '--json'])).json).toEqual({path: file})
    expect((await shien(['config', 'path'])).stdout).toBe(`${file}\n`)
    const set = await shien(['config', 'set', 'host', 'blade1', '--json'])
    expect(set.exitCode, set.stderr).toBe(0)
    expect(set.json).toEqual({key: 'host', value: 'blade1', file})
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({host: 'blade1'})
    expect((await shien(['config', 'get', 'host'])).stdout).toBe('blade1\n')
    expect((await shien(['config', 'get', 'host', '--json'])).json).toMatchObject({key: 'host', value: 'blade1', source: file, userFile: file})
    const list = await shien(['config', 'list', '--json'])
    expect(list.json.userFile).toBe(file)
    expect(list.json.settings[0]).toMatchObject({key: 'host', value: 'blade1', source: file})
    const table = (await shien(['config', 'list'])).stdout
    expect(table).toMatch(new RegExp(`^KEY +VALUE +FROM\nhost +blade1 +${file.replaceAll('.', '\\.')}\n`))
    expect(table).toContain(`user config:  ${file}`)
    expect((await shien(['config', 'unset', 'host', '--json'])).json).toMatchObject({key: 'host', removed: true, file})
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({})
    expect((await shien(['config', 'get', 'host'])).stdout).toBe('')
  })

  it('refuses an unknown key with the usage exit code and the envelope, naming the nearest', async () => {
    const run = await shien(['config', 'set', 'hots', 'blade1', '--json'])
    expect(run.exitCode).toBe(2)
    expect(run.json.error).toMatchObject({code: 'CONFIG_UNKNOWN_KEY', exitCode: 2, suggestions: expect.arrayContaining(['Did you mean "host"?'])})
  })

  it('reports an invalid user config as CONFIG_INVALID, exit 3, naming the file and the field', async () => {
    writeFileSync(file, JSON.stringify({host: 'blade1', slot: 2}))
    const run = await shien(['config', 'list', '--json'])
    expect(run.exitCode).toBe(3)
    expect(run.json.error).toMatchObject({code: 'CONFIG_INVALID', exitCode: 3, message: `${file} is not valid: slot: expected string, got number 2.`})
    const human = await shien(['config', 'get', 'host'])
    expect(human.stderr).toContain(`Error (CONFIG_INVALID): ${file} is not valid: slot: expected string, got number 2.`)
    expect((await shien(['config', 'unset', 'slot'])).exitCode).toBe(0)
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({host: 'blade1'})
  })

  it('has help with examples and the settings from the schema', async () => {
    const help = await shien(['config', 'set', '--help'])
    expect(help.stdout).toContain('EXAMPLES')
    expect(help.stdout).toContain('shien config set host blade1')
    for (const key of ['host:', 'slot:', 'base:', 'bladeCommand:']) expect(help.stdout).toContain(key)
  })
})
