import {mkdirSync, mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {planCloudPush} from '../../../src/cloud/plan.js'

function laptop() {
  const home = mkdtempSync(join(tmpdir(), 'cloud-plan-'))
  mkdirSync(join(home, '.ssh'))
  writeFileSync(join(home, '.ssh', 'config'), 'Host blade1\n  HostName 192.0.2.10\n  User e195701\n')
  writeFileSync(join(home, 'disk.qcow2'), 'x')
  const env = {HOME: home, SAKURACLOUD_ACCESS_TOKEN: 't', SAKURACLOUD_ACCESS_TOKEN_SECRET: 's'}
  return {home, env}
}

describe('planCloudPush', () => {
  it('reads a two-digit source as a slot on the blade, named ACCOUNT-SLOT', () => {
    const {home, env} = laptop()
    const plan = planCloudPush({source: '1', zone: 'is1a', host: 'blade1', cwd: home, env})
    expect(plan.source).toMatchObject({kind: 'slot', slot: '01', target: {hostName: '192.0.2.10', user: 'e195701'}})
    expect(plan.archive).toEqual({name: 'e195701-01', description: 'Pushed by shien from slot 01 of e195701 on blade1', tags: ['shien']})
    expect(JSON.stringify(plan)).not.toContain('"s"')
  })

  it('reads anything else as a file, converted next to itself unless --work-dir', () => {
    const {home, env} = laptop()
    const plan = planCloudPush({source: './disk.qcow2', cwd: home, env: {...env, SAKURACLOUD_ZONE: 'tk1a'}})
    expect(plan).toMatchObject({zone: 'tk1a', source: {kind: 'file', path: join(home, 'disk.qcow2'), workDir: home}, archive: {name: 'disk'}})
  })

  it('reports every problem at once', () => {
    const {home, env} = laptop()
    expect(() => planCloudPush({source: 'nope.img', zone: 'mars', name: 'a\u0007b', cwd: home, env})).toThrow(
      expect.objectContaining({code: 'BAD_CLOUD_PUSH', exitCode: 2, message: expect.stringMatching(/nope\.img is not a file\.[\s\S]*"mars" is not a Sakura Cloud zone[\s\S]*cannot name an archive/)}),
    )
    expect(() => planCloudPush({source: '02', zone: 'is1a', cwd: home, env})).toThrow(/A slot lives on a blade: pass --host/)
  })
})
