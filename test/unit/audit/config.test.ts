import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {DEFAULT_AUDIT_CONFIG, loadAuditConfig, weakPasswordList} from '../../../src/audit/config.js'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shien-audit-config-'))
})
afterAll(async () => {
  await rm(dir, {recursive: true, force: true})
})

async function load(json: unknown) {
  const file = join(dir, `c${Math.random()}.json`)
  await writeFile(file, JSON.stringify(json))
  return loadAuditConfig(file)
}

describe('audit configuration', () => {
  it('uses the defaults without a file or an audit section, and merges a partial one', async () => {
    expect(await loadAuditConfig(join(dir, 'missing.json'))).toEqual(DEFAULT_AUDIT_CONFIG)
    expect(await load({storageRoot: '/x'})).toEqual(DEFAULT_AUDIT_CONFIG)
    const c = await load({audit: {concurrency: 4, live: {allowedPorts: [22, 80]}}})
    expect([c.concurrency, c.live.allowedPorts, c.live.users]).toEqual([4, [22, 80], ['vagrant', 'root']])
  })

  it.each([[{concurrency: 0}], [{live: {ports: [70000]}}], [{live: {users: ['$(id)']}}], [{weakPasswords: [1]}], [{boxes: {perLaunch: 0}}]])(
    'refuses %j', async (audit) => {
      await expect(load({audit})).rejects.toMatchObject({code: 'CONFIG_INVALID', exitCode: 3})
    })

  it('adds the admin list from the config and a file, without built-ins or duplicates', async () => {
    const file = join(dir, 'weak.txt')
    await writeFile(file, '# course passwords\nie2015\r\nvagrant\n\nqwerty\nie2015\n')
    const lists = await weakPasswordList({...DEFAULT_AUDIT_CONFIG, weakPasswords: ['qwerty'], weakPasswordsFile: file})
    expect(lists).toEqual({builtin: ['vagrant', 'root', 'password', ''], admin: ['qwerty', 'ie2015']})
    await expect(weakPasswordList({...DEFAULT_AUDIT_CONFIG, weakPasswordsFile: join(dir, 'none')})).rejects.toMatchObject({code: 'CONFIG_UNREADABLE'})
  })
})
