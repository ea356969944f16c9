import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {bladeHost} from '../../../src/client/find-blade.js'
import {findProjectFile, loadProjectConfig, userConfigPath} from '../../../src/client/project-config.js'
import {planPush} from '../../../src/push/plan.js'

describe('.shien.json and the user config', () => {
  let root: string
  let env: NodeJS.ProcessEnv
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'shien-project-config-'))
    env = {HOME: join(root, 'home'), XDG_CONFIG_HOME: join(root, 'xdg'), PATH: process.env.PATH}
  })
  afterEach(() => rmSync(root, {recursive: true, force: true}))

  const write = (path: string, value: unknown) => {
    mkdirSync(join(path, '..'), {recursive: true})
    writeFileSync(path, typeof value === 'string' ? value : JSON.stringify(value))
  }

  it('finds .shien.json in the folder or the nearest parent, and stops at the first found', () => {
    const project = join(root, 'course', 'web')
    const deep = join(project, 'app', 'src')
    mkdirSync(deep, {recursive: true})
    write(join(root, 'course', '.shien.json'), {host: 'outer', slot: '09'})
    write(join(project, '.shien.json'), {host: 'inner'})
    expect(findProjectFile(deep)).toBe(join(project, '.shien.json'))
    expect(findProjectFile(project)).toBe(join(project, '.shien.json'))
    const config = loadProjectConfig(deep, env)
    expect(config).toMatchObject({host: 'inner', projectFile: join(project, '.shien.json'), projectDir: project})
    // The outer file is never read once the inner one is found: its slot does not leak in.
    expect(config.slot).toBeUndefined()
    expect(bladeHost({cwd: deep, env})).toBe('inner')
  })

  it('walks up to the filesystem root and finds nothing when there is no .shien.json', () => {
    const lonely = join(root, 'a', 'b')
    mkdirSync(lonely, {recursive: true})
    // tmpdir() and / have no .shien.json on a test machine; a folder named .shien.json is not one.
    mkdirSync(join(root, 'a', '.shien.json'))
    expect(findProjectFile(lonely)).toBeUndefined()
    expect(loadProjectConfig(lonely, env)).toMatchObject({projectFile: undefined, projectDir: lonely, sources: {}})
  })

  it('puts the project over the user config and says which file each setting came from', () => {
    const project = join(root, 'p')
    write(join(project, '.shien.json'), {slot: '02'})
    write(userConfigPath(env), {host: 'blade1', slot: '05'})
    const config = loadProjectConfig(project, env)
    expect(config).toMatchObject({host: 'blade1', slot: '02'})
    expect(config.sources).toEqual({host: userConfigPath(env), slot: join(project, '.shien.json')})
    expect(userConfigPath(env)).toBe(join(root, 'xdg', 'shien', 'config.json'))
    expect(userConfigPath({HOME: join(root, 'home')})).toBe(join(root, 'home', '.config', 'shien', 'config.json'))
  })

  it('refuses a wrong type or an unknown key, naming the file and the field', () => {
    const project = join(root, 'p')
    write(join(project, '.shien.json'), {host: ['blade1'], slto: '02'})
    expect(() => loadProjectConfig(project, env)).toThrow(expect.objectContaining({
      code: 'CONFIG_INVALID',
      exitCode: 3,
      message: `${join(project, '.shien.json')} is not valid:\n  - host: expected string, got a list\n  - slto: not a known setting`,
    }))
    write(join(project, '.shien.json'), {})
    write(userConfigPath(env), {bladeCommand: 7})
    expect(() => loadProjectConfig(project, env)).toThrow(`${userConfigPath(env)} is not valid: bladeCommand: expected string, got number 7.`)
    write(userConfigPath(env), 'host = blade1')
    expect(() => loadProjectConfig(project, env)).toThrow(expect.objectContaining({code: 'CONFIG_INVALID', message: expect.stringContaining(`${userConfigPath(env)} is not valid JSON`)}))
  })

  it('runs a push from a subfolder as from the project: its Vagrantfile, its box path, its name, and says which file', () => {
    const project = join(root, 'web')
    const sub = join(project, 'src')
    mkdirSync(sub, {recursive: true})
    write(join(project, 'boxes', 'web.box'), 'not really a box')
    write(join(project, '.shien.json'), {host: 'blade1', box: 'boxes/web.box'})
    const plan = planPush({cwd: sub, env: {...env, HOME: root}})
    expect(plan).toMatchObject({projectDir: project, projectFile: join(project, '.shien.json'), boxPath: join(project, 'boxes', 'web.box'), name: 'web'})
    write(join(project, '.shien.json'), {host: 'blade1'})
    write(join(project, 'Vagrantfile'), 'Vagrant.configure("2") {}\n')
    const packaging = planPush({cwd: sub, env: {...env, HOME: root}})
    expect(packaging).toMatchObject({projectDir: project, boxPath: undefined, keepDir: join(project, '.vagrant', 'shien'), name: 'web'})
  })
})
