import {describe, expect, it} from 'vitest'

import {parseRunArgs} from '../../../src/protocol/ie-docker-run.js'
import {resourceArgs, userArgs} from '../../../src/docker/policy.js'
import {checkAccount, checkName, fullName, normalizeImage} from '../../../src/docker/names.js'
import {renderProxy} from '../../../src/docker/proxy.js'

const limits = {containers: 8, memoryMiB: 512, cpus: 1}

describe('parseRunArgs', () => {
  it('parses docker-style flags, then the image, then the command untouched', () => {
    const r = parseRunArgs(['-it', '--name', 'web', '-v', '/s/repo:/srv:ro', '-e', 'A=1', '-p', '8080', 'fedora:20', '/bin/bash', '--privileged'])
    expect(r).toMatchObject({interactive: true, tty: true, name: 'web', image: 'fedora:20', command: ['/bin/bash', '--privileged'], env: ['A=1'], ports: [8080]})
    expect(r.volumes).toEqual([{source: '/s/repo', target: '/srv', readOnly: true}])
  })

  it.each([['--privileged'], ['--cap-add=NET_ADMIN'], ['--pid=host'], ['--network', 'host'], ['--ipc=host'], ['--userns=host'], ['--device=/dev/kvm'], ['--security-opt', 'x'], ['--mount', 'x'], ['-P']])(
    'refuses %s before the image',
    (...flag) => expect(() => parseRunArgs([...flag, 'img'])).toThrow(expect.objectContaining({code: 'FLAG_REFUSED'})),
  )

  it('refuses a host port and needs an image', () => {
    expect(() => parseRunArgs(['-p', '80:8080', 'img'])).toThrow(/host ports are not yours/)
    expect(() => parseRunArgs(['-d'])).toThrow(/needs an IMAGE/)
  })
})

describe('the rules', () => {
  it('always caps memory and CPUs, keeps a smaller -m and refuses a larger one', () => {
    expect(resourceArgs({}, limits)).toEqual(['--memory', `${512 * 1024 ** 2}b`, '--cpus', '1'])
    expect(resourceArgs({memory: '64m', cpus: '0.5'}, limits)).toEqual(['--memory', `${64 * 1024 ** 2}b`, '--cpus', '0.5'])
    expect(() => resourceArgs({memory: '1g'}, limits)).toThrow(expect.objectContaining({code: 'OVER_LIMIT'}))
    expect(() => resourceArgs({cpus: '2'}, limits)).toThrow(expect.objectContaining({code: 'OVER_LIMIT'}))
  })

  it('runs every container as its owner, in a user namespace where 0 inside is the owner outside', () => {
    const me = {uid: 1001, gid: 1002}
    const own = ['--uidmap', '0:1001:1', '--gidmap', '0:1002:1', '--user', '0:0']
    expect(userArgs({}, me)).toEqual(own)
    for (const user of ['1001', '1001:1002', '01001', '001001:0001002']) expect(userArgs({user}, me)).toEqual(own)
  })

  it.each([
    ['0', /root/], ['00', /root/], ['0000:0000', /root/], ['0:5', /root/], ['5:0', /root/], ['1001:0', /root/],
    ['root', /numeric uid/], ['nobody', /numeric uid/], ['1001:staff', /numeric uid/], ['-1', /numeric uid/], ['1e3', /numeric uid/], [' 1001', /numeric uid/],
    ['1002', /runs as its owner/], ['1001:1001', /runs as its owner/], ['4294967296', /runs as its owner/],
  ])('refuses --user %j', (user, why) => {
    expect(() => userArgs({user}, {uid: 1001, gid: 1002})).toThrow(expect.objectContaining({code: 'FLAG_REFUSED', message: expect.stringMatching(why)}))
  })

  it('refuses to run containers for root itself', () => {
    expect(() => userArgs({}, {uid: 0, gid: 0})).toThrow(expect.objectContaining({code: 'FLAG_REFUSED'}))
  })

  it('accepts only DNS-label names and compares images without podman\'s localhost/', () => {
    expect(checkName('web1', 'container')).toBe('web1')
    // No hyphens: `<account>-<name>` splits at its last hyphen into one account and one name.
    for (const bad of ['a;b', '../x', 'A', 'a.b', '-a', '', 'web-1', '5701-web']) expect(() => checkName(bad, 'container')).toThrow(/not a container name/)
    expect(fullName('e19-5701', 'web')).toBe('e19-5701-web')
    expect(() => fullName('a'.repeat(30), 'b'.repeat(33))).toThrow(/must fit in 63/)
    for (const ok of ['e195701', 'e19-5701']) expect(checkAccount(ok)).toBe(ok)
    for (const bad of ['E195701', 'e19_5701', 'e19.5701', '-e19', 'e19-']) expect(() => checkAccount(bad)).toThrow(expect.objectContaining({code: 'ACCOUNT_NOT_SUPPORTED'}))
    expect(normalizeImage('localhost/e1-img')).toBe('e1-img:latest')
  })

  it("writes one proxy server per container of this blade, on its lowest port", () => {
    const text = renderProxy([{port: 5, owner: 'e1-web', host: 'b1'}, {port: 4, owner: 'e1-web', host: 'b1'}, {port: 6, owner: 'e2-x', host: 'b2'}], 'b1', {listenAddress: '127.0.0.1', proxy: {domain: 'd.test', includeFile: '/x', reload: []}})
    expect(text).toContain('server_name e1-web.d.test;')
    expect(text).toContain('proxy_pass http://127.0.0.1:4;')
    expect(text).not.toContain('e2-x')
  })
})
