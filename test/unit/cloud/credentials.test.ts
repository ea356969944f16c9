import {chmodSync, mkdirSync, mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {inspect} from 'node:util'

import {describe, expect, it} from 'vitest'

import {resolveCredentials} from '../../../src/cloud/credentials.js'
import {Secret} from '../../../src/cloud/secret.js'

/** A home with usacloud profiles: name -> config.json content, written mode 600. */
function home(profiles: Record<string, object>, current?: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'usacloud-'))
  for (const [name, config] of Object.entries(profiles)) {
    mkdirSync(join(dir, '.usacloud', name), {recursive: true})
    writeFileSync(join(dir, '.usacloud', name, 'config.json'), JSON.stringify(config), {mode: 0o600})
  }
  if (current) writeFileSync(join(dir, '.usacloud', 'current'), `${current}\n`)
  return dir
}

describe('resolveCredentials', () => {
  it('takes SAKURACLOUD_ACCESS_TOKEN and _SECRET from the environment first', () => {
    const env = {HOME: home({default: {AccessToken: 'p', AccessTokenSecret: 'q'}}), SAKURACLOUD_ACCESS_TOKEN: 't', SAKURACLOUD_ACCESS_TOKEN_SECRET: 's'}
    const {credentials, profile} = resolveCredentials(env)
    expect(credentials.token).toBe('t')
    expect(credentials.secret.reveal()).toBe('s')
    expect(profile).toBeUndefined()
  })

  it('reads the current usacloud profile, with its zone and API root', () => {
    const dir = home({default: {AccessToken: 'd', AccessTokenSecret: 'ds'}, os101: {AccessToken: 'o', AccessTokenSecret: 'os', Zone: 'is1b', APIRootURL: 'https://api.example'}}, 'os101')
    const {credentials, profile} = resolveCredentials({HOME: dir})
    expect(credentials.token).toBe('o')
    expect(profile).toEqual({path: join(dir, '.usacloud', 'os101', 'config.json'), zone: 'is1b', apiRoot: 'https://api.example'})
    expect(resolveCredentials({HOME: dir, SAKURACLOUD_PROFILE: 'default'}).credentials.token).toBe('d')
    expect(resolveCredentials({HOME: dir}, 'default').credentials.token).toBe('d')
    expect(resolveCredentials({HOME: '/nonexistent', SAKURACLOUD_PROFILE_DIR: dir}).credentials.token).toBe('o')
  })

  it('refuses a profile others can read, naming the fix', () => {
    const dir = home({default: {AccessToken: 'd', AccessTokenSecret: 'ds'}})
    chmodSync(join(dir, '.usacloud', 'default', 'config.json'), 0o640)
    expect(() => resolveCredentials({HOME: dir})).toThrow(expect.objectContaining({code: 'CLOUD_PROFILE_UNSAFE', exitCode: 6, suggestions: [expect.stringMatching(/^chmod 600 /), expect.any(String)]}))
  })

  it('says where it looked when there is no key', () => {
    const dir = home({})
    expect(() => resolveCredentials({HOME: dir})).toThrow(/No Sakura Cloud API key: neither the environment nor .*\.usacloud\/default\/config\.json has one/)
    expect(() => resolveCredentials({HOME: dir, SAKURACLOUD_ACCESS_TOKEN: 't'})).toThrow(/only one of SAKURACLOUD_ACCESS_TOKEN and SAKURACLOUD_ACCESS_TOKEN_SECRET is set/)
    expect(() => resolveCredentials({HOME: dir}, 'nope')).toThrow(/usacloud profile .*nope\/config\.json does not exist/)
    expect(() => resolveCredentials({HOME: dir}, '../x')).toThrow(/is not a usacloud profile name/)
  })
})

describe('Secret', () => {
  it('never prints its value, however it is turned into text', () => {
    const secret = new Secret('hunter2-very-secret')
    const holder = {token: 't', secret, nested: [secret]}
    for (const text of [String(secret), `${secret}`, JSON.stringify(holder), inspect(holder, {depth: 5}), inspect(secret, {showHidden: true})]) {
      expect(text).not.toContain('hunter2')
      expect(text).toContain('[secret]')
    }
    expect(secret.reveal()).toBe('hunter2-very-secret')
  })
})
