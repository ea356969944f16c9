import {chmod, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {DEFAULT_BLADE_CONFIG, loadBladeConfig, pushSettings} from '../../../src/config/blade-config.js'
import {main as ieDocker} from '../../../src/docker/main.js'
import {loadTrustedConfig} from '../../../src/privileged/trusted-config.js'
import {main as ieVirsh} from '../../../src/virsh/main.js'

describe('/etc/shien/config.json against its schema', () => {
  let dir: string
  let path: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shien-blade-config-'))
    path = join(dir, 'config.json')
  })
  afterEach(() => rm(dir, {recursive: true, force: true}))

  const write = (config: unknown) => writeFile(path, typeof config === 'string' ? config : JSON.stringify(config), {mode: 0o644})

  it('refuses a wrong type, naming the file, the dotted field and what was expected', async () => {
    await write({storageRoot: 42})
    expect(() => loadBladeConfig(path)).toThrow(expect.objectContaining({
      code: 'CONFIG_INVALID', exitCode: 3, message: `${path} is not valid: storageRoot: expected string, got number 42.`,
    }))
    await write({limits: {default: {vms: '4'}}})
    expect(() => loadBladeConfig(path)).toThrow(`${path} is not valid: limits.default.vms: expected number, got string "4".`)
    await write({domainType: 'xen'})
    expect(() => loadBladeConfig(path)).toThrow('domainType: expected one of "kvm", "qemu", "auto", got "xen"')
    await write({docker: {proxy: {reload: 'nginx -s reload'}}})
    expect(() => loadBladeConfig(path)).toThrow('docker.proxy.reload: expected array, got string "nginx -s reload"')
  })

  it('refuses unknown keys at every depth, a group\'s name included in the path', async () => {
    await write({storageroot: '/srv', limits: {groups: {os101: {debgu: true}}}, push: {keepIncoming: 3}, audit: {live: {port: [22]}}})
    let error: Error | undefined
    try {
      loadBladeConfig(path)
    } catch (caught) {
      error = caught as Error
    }
    expect(error).toMatchObject({code: 'CONFIG_INVALID'})
    expect(error!.message).toContain(`${path} is not valid:\n`)
    for (const field of ['storageroot', 'limits.groups.os101.debgu', 'push.keepIncoming', 'audit.live.port']) {
      expect(error!.message).toContain(`  - ${field}: not a known setting`)
    }
  })

  it('refuses a file that is not JSON or not an object', async () => {
    await write('{"storageRoot": ')
    expect(() => loadBladeConfig(path)).toThrow(expect.objectContaining({code: 'CONFIG_INVALID', message: expect.stringContaining(`${path} is not valid JSON`)}))
    await write([])
    expect(() => loadBladeConfig(path)).toThrow('(top level): expected object, got a list')
  })

  it('keeps the defaults for keys an existing file leaves out, nested ones too', async () => {
    await write({storageRoot: '/srv/shien', limits: {default: {vms: 2}, groups: {staff: {vms: 8}}}, ldap: {url: 'ldap://x', userBase: 'u', groupBase: 'g'}})
    const config = loadBladeConfig(path)
    expect(config.storageRoot).toBe('/srv/shien')
    expect(config.libvirtUri).toBe(DEFAULT_BLADE_CONFIG.libvirtUri)
    expect(config.sshPortPool).toEqual({from: 22000, to: 22999})
    expect(config.limits).toEqual({default: {...DEFAULT_BLADE_CONFIG.limits.default, vms: 2}, groups: {staff: {vms: 8}}})
    expect(config.ldap).toMatchObject({url: 'ldap://x', timeoutMs: 5000, userFilter: '(objectClass=posixAccount)'})
    expect(config.push).toBeUndefined()
    await write({})
    expect(loadBladeConfig(path)).toEqual(DEFAULT_BLADE_CONFIG)
  })

  it('fills push defaults from the schema and keeps what the file says', async () => {
    await write({push: {maxHoldMinutes: 15}})
    expect(pushSettings(loadBladeConfig(path))).toMatchObject({maxHoldMinutes: 15, applianceMemMiB: 512, convertCache: 'none'})
    expect(pushSettings({}).concurrent).toBeGreaterThanOrEqual(1)
  })

  it('is refused by the privileged side when missing, naming the file; the student side takes the defaults', () => {
    const missing = join(dir, 'none.json')
    expect(() => loadTrustedConfig(missing)).toThrow(expect.objectContaining({
      code: 'CONFIG_MISSING', exitCode: 3, message: expect.stringContaining(`The blade configuration ${missing} is missing`),
    }))
    expect(loadBladeConfig(missing)).toEqual(DEFAULT_BLADE_CONFIG)
  })

  it('is refused when unreadable, naming the file', async () => {
    // A folder where the file should be: unreadable as a file for root and for anyone else.
    const folder = join(dir, 'folder.json')
    await rm(folder, {force: true})
    await import('node:fs/promises').then((fs) => fs.mkdir(folder))
    expect(() => loadBladeConfig(folder)).toThrow(expect.objectContaining({code: 'CONFIG_UNREADABLE', message: expect.stringContaining(`Cannot read ${folder} (EISDIR)`)}))
    if (process.getuid?.() !== 0) {
      await write({})
      await chmod(path, 0o000)
      expect(() => loadBladeConfig(path)).toThrow(expect.objectContaining({code: 'CONFIG_UNREADABLE', message: expect.stringContaining(path)}))
    }
  })

  it.each([
    ['ie-virsh', ieVirsh, ['list']],
    ['ie-docker', ieDocker, ['ps']],
  ] as const)('%s refuses to run without the blade configuration, naming it', async (_tool, entry, argv) => {
    const configPath = join(dir, 'absent', 'config.json')
    let out = ''
    const code = await entry(['--json', ...argv], {
      configPath,
      env: {SUDO_UID: '1001'},
      realUid: 0,
      lookupAccount: async (uid: number) => (uid === 1001 ? 'e195701' : 'root'),
      stdout: (t: string) => (out += t),
      stderr: () => undefined,
    })
    expect(code).toBe(3)
    expect(JSON.parse(out).error).toMatchObject({code: 'CONFIG_MISSING', exitCode: 3, message: expect.stringContaining(configPath)})
  })

  it.each([
    ['ie-virsh', ieVirsh, ['list']],
    ['ie-docker', ieDocker, ['ps']],
  ] as const)('%s refuses an unknown key in the blade configuration, naming file and field', async (_tool, entry, argv) => {
    await write({storageRoot: dir, dockr: {engine: 'podman'}})
    let out = ''
    const code = await entry(['--json', ...argv], {
      configPath: path,
      env: {SUDO_UID: '1001'},
      realUid: 0,
      lookupAccount: async (uid: number) => (uid === 1001 ? 'e195701' : 'root'),
      stdout: (t: string) => (out += t),
      stderr: () => undefined,
    })
    expect(code).toBe(3)
    expect(JSON.parse(out).error).toMatchObject({code: 'CONFIG_INVALID', message: `${path} is not valid: dockr: not a known setting.`})
  })
})
