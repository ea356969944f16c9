import {copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, describe, expect, it} from 'vitest'

import {ShienError} from '../../../src/errors.js'
import {chooseBase, parseBaseRef} from '../../../src/push/base-choice.js'
import {planPush} from '../../../src/push/plan.js'

/** box_meta as Vagrant 2.4 writes it after `vagrant up` of os101/debian12 2026.1.0. */
const FIXTURE = new URL('../../fixtures/vagrant-project/box_meta', import.meta.url).pathname

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, {recursive: true, force: true})
})

function project(o: {shien?: object | string; metas?: Record<string, string>} = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'shien-base-'))
  const home = mkdtempSync(join(tmpdir(), 'shien-home-'))
  dirs.push(dir, home)
  mkdirSync(join(home, '.ssh'))
  writeFileSync(join(home, '.ssh', 'config'), 'Host blade\n  HostName 127.0.0.1\n  User e195701\n')
  writeFileSync(join(dir, 'Vagrantfile'), '')
  const shien = typeof o.shien === 'string' ? o.shien : JSON.stringify({host: 'blade', ...o.shien})
  writeFileSync(join(dir, '.shien.json'), shien)
  for (const [machine, text] of Object.entries(o.metas ?? {})) {
    const at = join(dir, '.vagrant', 'machines', machine, 'virtualbox')
    mkdirSync(at, {recursive: true})
    if (text === 'FIXTURE') copyFileSync(FIXTURE, join(at, 'box_meta'))
    else writeFileSync(join(at, 'box_meta'), text)
  }
  return {dir, env: {HOME: home, XDG_CONFIG_HOME: join(home, '.config')} as NodeJS.ProcessEnv}
}

function usageError(run: () => unknown): ShienError {
  try {
    run()
  } catch (error) {
    expect(error).toBeInstanceOf(ShienError)
    expect((error as ShienError).exitCode).toBe(2)
    return error as ShienError
  }
  throw new Error('expected a usage error')
}

describe('which base a push is a delta against', () => {
  it('takes the box Vagrant recorded in box_meta when shien packages the project', () => {
    const {dir, env} = project({metas: {default: 'FIXTURE'}})
    const plan = planPush({cwd: dir, env})
    expect(plan.base).toEqual({kind: 'base', box: 'os101/debian12', version: '2026.1.0', from: 'box_meta'})
    expect(plan.keepDir).toBe(join(dir, '.vagrant', 'shien'))
  })

  it('prefers the base of .shien.json over box_meta, and --base over both', () => {
    const {dir, env} = project({shien: {base: 'os101/debian12@2026.2.0'}, metas: {default: 'FIXTURE'}})
    expect(planPush({cwd: dir, env}).base).toMatchObject({box: 'os101/debian12', version: '2026.2.0', from: '.shien.json'})
    expect(planPush({cwd: dir, env, base: 'os102/alma9@1.0.0-rc1'}).base).toMatchObject({box: 'os102/alma9', version: '1.0.0-rc1', from: '--base'})
  })

  it('sends the whole box with --full, without reading anything', () => {
    const {dir, env} = project({shien: {base: 'os101/debian12@2026.2.0'}, metas: {default: '{broken'}})
    expect(planPush({cwd: dir, env, full: true}).base).toEqual({kind: 'full'})
  })

  it('refuses a malformed --base, a malformed .shien.json base and --full with --base, as usage errors', () => {
    const {dir, env} = project()
    expect(usageError(() => planPush({cwd: dir, env, base: 'os101/debian12'})).message).toContain('is not ORG/NAME@VERSION')
    expect(usageError(() => planPush({cwd: dir, env, base: 'OS101/Debian12@1'})).message).toContain('is not a catalog box name')
    expect(usageError(() => planPush({cwd: dir, env, base: 'os101/debian12@latest'})).message).toContain('"latest"')
    expect(usageError(() => planPush({cwd: dir, env, base: '../x@1'})).message).toContain('is not a catalog box name')
    expect(usageError(() => planPush({cwd: dir, env, base: 'os101/debian12@1', full: true})).message).toContain('--full and --base')
    const bad = project({shien: {base: 'debian12'}})
    expect(usageError(() => planPush({cwd: bad.dir, env: bad.env})).message).toContain('The base in .shien.json')
  })

  it('refuses a .shien.json base that is not a string as an invalid config naming the file and field', () => {
    const notString = project({shien: {base: 12}})
    expect(() => planPush({cwd: notString.dir, env: notString.env})).toThrow(expect.objectContaining({
      code: 'CONFIG_INVALID', exitCode: 3, message: expect.stringMatching(/\.shien\.json is not valid: base: expected string, got number 12/),
    }))
  })

  it('reports a bad base together with the plan\'s other problems', () => {
    const {dir, env} = project()
    const error = usageError(() => planPush({cwd: dir, env, base: 'x', slot: '1x'}))
    expect(error.message).toContain('Slot "1x"')
    expect(error.message).toContain('ORG/NAME@VERSION')
  })

  it('gives a reason, not an error, when Vagrant\'s record names no catalog base', () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{}, /no record of the box/],
      [{default: '{"name":"os101/debian12"'}, /machines\/default\/virtualbox\/box_meta cannot be read: it is not JSON/],
      [{default: '["os101/debian12"]'}, /not a JSON object/],
      [{default: '{"name":"os101/debian12","version":2026,"provider":"virtualbox"}'}, /"version" is not a string/],
      [{default: '{"name":"my-box","version":"0","provider":"virtualbox"}'}, /"my-box" is not a catalog box/],
      [{default: '{"name":"os101/debian12","version":"0","provider":"virtualbox"}'}, /no catalog version/],
      [{web: 'FIXTURE', db: '{"name":"os101/alma9","version":"1.0.0","provider":"virtualbox"}'}, /different boxes \(os101\/alma9@1.0.0, os101\/debian12@2026.1.0\)/],
    ]
    for (const [metas, reason] of cases) {
      const {dir, env} = project({metas})
      const base = planPush({cwd: dir, env}).base
      expect(base.kind).toBe('none')
      expect(base.kind === 'none' && base.reason).toMatch(reason)
    }
  })

  it('takes two machines made from the same box as that box', () => {
    const {dir, env} = project({metas: {web: 'FIXTURE', db: 'FIXTURE'}})
    expect(planPush({cwd: dir, env}).base).toMatchObject({kind: 'base', box: 'os101/debian12'})
  })

  it('reads Vagrant\'s record under VAGRANT_DOTFILE_PATH when it is set', () => {
    const {dir, env} = project()
    mkdirSync(join(dir, 'dot', 'machines', 'default', 'virtualbox'), {recursive: true})
    copyFileSync(FIXTURE, join(dir, 'dot', 'machines', 'default', 'virtualbox', 'box_meta'))
    const plan = planPush({cwd: dir, env: {...env, VAGRANT_DOTFILE_PATH: 'dot'}})
    expect(plan.base).toMatchObject({kind: 'base', from: 'box_meta'})
    expect(plan.keepDir).toBe(join(dir, 'dot', 'shien'))
  })

  it('does not take box_meta for a named box file: that box may come from anywhere', () => {
    const {dir, env} = project({metas: {default: 'FIXTURE'}})
    writeFileSync(join(dir, 'web.box'), 'x')
    const plan = planPush({cwd: dir, env, box: 'web.box'})
    expect(plan.base).toMatchObject({kind: 'none', reason: expect.stringContaining('--base ORG/NAME@VERSION')})
    expect(plan.keepDir).toBeUndefined()
    expect(planPush({cwd: dir, env, box: 'web.box', base: 'os101/debian12@2026.1.0'}).base).toMatchObject({kind: 'base'})
  })

  it('parses ORG/NAME@VERSION', () => {
    expect(parseBaseRef('os101/debian12@2026.1.0')).toEqual({box: 'os101/debian12', version: '2026.1.0'})
    expect(parseBaseRef('os101/debian12@')).toMatch(/is empty/)
    const problems: string[] = []
    expect(chooseBase({packaging: true, projectDir: '/nonexistent', env: {}}, problems)).toMatchObject({kind: 'none'})
    expect(problems).toEqual([])
  })
})
