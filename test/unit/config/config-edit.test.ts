import {chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {configGet, configList, configPath, configSet, configUnset} from '../../../src/client/user-config.js'
import {bladeConfigSchema} from '../../../src/config/blade-schema.js'
import {editConfigFile, parseSettingValue, requireSettingKey, setPath, unsetPath} from '../../../src/config/config-edit.js'
import {loadBladeConfig} from '../../../src/config/blade-config.js'

describe('shien config on the user config', () => {
  let root: string
  let context: {cwd: string; env: NodeJS.ProcessEnv}
  let file: string
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'shien-config-edit-'))
    const cwd = join(root, 'project')
    mkdirSync(cwd)
    context = {cwd, env: {HOME: join(root, 'home'), XDG_CONFIG_HOME: join(root, 'xdg')}}
    file = join(root, 'xdg', 'shien', 'config.json')
  })
  afterEach(() => rmSync(root, {recursive: true, force: true}))

  const read = () => JSON.parse(readFileSync(file, 'utf8')) as unknown

  it('set, get, list and unset go round, making the file and its folder', async () => {
    expect(configPath(context)).toEqual({path: file})
    expect(configGet(context, 'host')).toMatchObject({key: 'host', value: undefined, source: undefined})
    expect(await configSet(context, 'host', 'blade1')).toEqual({key: 'host', value: 'blade1', file, overriddenBy: undefined})
    await configSet(context, 'slot', '02')
    expect(read()).toEqual({host: 'blade1', slot: '02'})
    expect(configGet(context, 'host')).toMatchObject({value: 'blade1', source: file, userFile: file})
    const list = configList(context)
    expect(list.userFile).toBe(file)
    expect(list.settings.map((s) => s.key)).toEqual(['host', 'slot', 'name', 'box', 'base', 'bladeCommand'])
    expect(list.settings.filter((s) => s.source)).toEqual([
      expect.objectContaining({key: 'host', value: 'blade1', source: file}),
      expect.objectContaining({key: 'slot', value: '02', source: file}),
    ])
    expect(await configUnset(context, 'host')).toMatchObject({key: 'host', removed: true})
    expect(read()).toEqual({slot: '02'})
    expect(await configUnset(context, 'host')).toMatchObject({removed: false})
    expect(configGet(context, 'host').value).toBeUndefined()
  })

  it('lists where each setting came from: .shien.json from a parent, the user config, SHIEN_HOST', async () => {
    writeFileSync(join(root, '.shien.json'), JSON.stringify({slot: '03'}))
    await configSet(context, 'host', 'blade1')
    const set = await configSet(context, 'slot', '07')
    expect(set.overriddenBy).toBe(join(root, '.shien.json'))
    const list = configList({...context, env: {...context.env, SHIEN_HOST: 'blade9'}})
    expect(list.projectFile).toBe(join(root, '.shien.json'))
    expect(list.settings.slice(0, 2)).toEqual([
      expect.objectContaining({key: 'host', value: 'blade9', source: 'env SHIEN_HOST'}),
      expect.objectContaining({key: 'slot', value: '03', source: join(root, '.shien.json')}),
    ])
  })

  it('refuses an unknown key as a usage error naming the nearest, and writes nothing', async () => {
    await expect(configSet(context, 'hots', 'blade1')).rejects.toMatchObject({
      code: 'CONFIG_UNKNOWN_KEY', exitCode: 2, message: '"hots" is not a setting.', suggestions: expect.arrayContaining(['Did you mean "host"?']),
    })
    expect(() => configGet(context, 'limits.default.vms')).toThrow(expect.objectContaining({code: 'CONFIG_UNKNOWN_KEY'}))
    expect(() => statSync(file)).toThrow()
  })

  it('keeps the old file, byte for byte, when the result would not pass the schema', async () => {
    mkdirSync(join(root, 'xdg', 'shien'), {recursive: true})
    const old = '{"host": "blade1", "extra": true}\n'
    writeFileSync(file, old)
    await expect(configSet(context, 'slot', '02')).rejects.toMatchObject({
      code: 'CONFIG_INVALID', message: `${file} is not valid: extra: not a known setting.`,
    })
    expect(readFileSync(file, 'utf8')).toBe(old)
    expect(readdirSync(join(root, 'xdg', 'shien'))).toEqual(['config.json'])
    // Removing the unknown key is allowed: that is how the file gets fixed.
    expect(await configUnset(context, 'extra')).toMatchObject({removed: true})
    expect(read()).toEqual({host: 'blade1'})
  })

  it('replaces the file by a rename and keeps its mode', async () => {
    mkdirSync(join(root, 'xdg', 'shien'), {recursive: true})
    writeFileSync(file, '{"host": "blade1"}\n')
    chmodSync(file, 0o600)
    const before = statSync(file).ino
    await configSet(context, 'host', 'blade2')
    expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(statSync(file).ino).not.toBe(before)
    expect(readFileSync(file, 'utf8')).toBe('{\n  "host": "blade2"\n}\n')
    expect(readdirSync(join(root, 'xdg', 'shien'))).toEqual(['config.json'])
  })
})

describe('editing nested keys through a schema (the blade config\'s)', () => {
  let root: string
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'shien-config-nested-'))
  })
  afterEach(() => rmSync(root, {recursive: true, force: true}))

  it('sets, reads back and unsets nested keys, typed by the schema, and refuses a wrong type', async () => {
    const file = join(root, 'config.json')
    const set = (key: string, raw: string) => editConfigFile(file, bladeConfigSchema, (c) => setPath(c, key, parseSettingValue(requireSettingKey(bladeConfigSchema, key), raw)))
    await set('limits.default.vms', '6')
    await set('limits.groups.os101.debug', 'true')
    await set('docker.engineArgs', '["--runtime", "runc"]')
    // A port pool needs both ends: half of one is refused, naming the missing field.
    await expect(set('sshPortPool.from', '23000')).rejects.toMatchObject({message: `${file} is not valid: sshPortPool.to: missing, expected number.`})
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({
      limits: {default: {vms: 6}, groups: {os101: {debug: true}}}, docker: {engineArgs: ['--runtime', 'runc']},
    })
    const before = readFileSync(file, 'utf8')
    await expect(set('limits.default.vms', 'many')).rejects.toMatchObject({message: `${file} is not valid: limits.default.vms: expected number, got string "many".`})
    await expect(set('limits.groups.os101.debug', 'yes')).rejects.toMatchObject({message: expect.stringContaining('limits.groups.os101.debug: expected boolean')})
    expect(readFileSync(file, 'utf8')).toBe(before)
    expect(() => requireSettingKey(bladeConfigSchema, 'limits.groups.os101.debgu')).toThrow(expect.objectContaining({code: 'CONFIG_UNKNOWN_KEY'}))
    await set('sshPortPool', '{"from": 23000, "to": 23099}')
    expect(loadBladeConfig(file)).toMatchObject({limits: {default: {vms: 6, vcpus: 2}, groups: {os101: {debug: true}}}, sshPortPool: {from: 23000, to: 23099}})
    await editConfigFile(file, bladeConfigSchema, (c) => unsetPath(unsetPath(c, 'limits.groups.os101.debug'), 'docker.engineArgs'))
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({limits: {default: {vms: 6}}, sshPortPool: {from: 23000, to: 23099}})
  })
})
