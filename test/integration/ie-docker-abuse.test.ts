import {chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {allContainers, ensureTestImage, ieDockerRunner, PODMAN_SETTINGS, removeContainers} from '../support/podman.js'
import {ensureUser} from '../support/system.js'

// What a student might try against ie-docker on the real podman. Each attempt must be refused
// with a reason and leave the engine's containers, the port pool and the proxy file as they were.
const ME = 'shien-dk3'
const OTHER = 'shien-dk4'
const POOL = {from: 42730, to: 42739}

describe('ie-docker refuses abuse and changes nothing', () => {
  let root: string
  let home: string
  const uid: Record<string, number> = {}

  async function writeConfig(docker: Record<string, unknown> = {}) {
    const settings = {...PODMAN_SETTINGS, portPool: POOL, proxy: {domain: 'c.test', includeFile: join(root, 'nginx', 'containers.conf')}, ...docker}
    await writeFile(join(root, 'config.json'), JSON.stringify({storageRoot: root, docker: settings}), {mode: 0o644})
  }

  const run = ieDockerRunner(() => join(root, 'config.json'), uid)

  async function snapshot() {
    const ports = (await readdir(join(root, 'ports', 'container')).catch(() => [] as string[])).filter((f) => !f.startsWith('.')).sort()
    const proxy = await readFile(join(root, 'nginx', 'containers.conf'), 'utf8').catch(() => '')
    // This test's accounts' containers (shien-dk*): the blade's tests run theirs beside it.
    return {containers: (await allContainers()).filter((c) => c.startsWith('shien-dk')), ports, proxy}
  }

  /** Runs the attempt, checks the error code and that nothing changed. */
  async function refused(account: string, argv: string[], code: string) {
    const before = await snapshot()
    const r = await run(account, ...argv)
    expect(r.body.error?.code, JSON.stringify(r.body)).toBe(code)
    expect(r.code).not.toBe(0)
    expect(r.body.error.message.length).toBeGreaterThan(10)
    expect(await snapshot()).toEqual(before)
    return r.body.error.message as string
  }

  beforeAll(async () => {
    root = await mkdtemp('/var/tmp/shien-docker-abuse-')
    // As on the blade's storage: students pass through the root and users/ to their own folder
    // (volumes are resolved as the student).
    await chmod(root, 0o755)
    await mkdir(join(root, 'users'), {mode: 0o755})
    await ensureTestImage()
    for (const a of [ME, OTHER]) uid[a] = await ensureUser(a)
    await removeContainers('shien-dk')
    for (const a of [ME, OTHER]) {
      await mkdir(join(root, 'users', a), {recursive: true, mode: 0o700})
      await chown(join(root, 'users', a), uid[a], uid[a])
    }
    home = join(root, 'users', ME)
    await mkdir(join(home, 'repo'))
    await symlink('/etc', join(home, 'etc-link'))
    await symlink(join(root, 'users', OTHER), join(home, 'other-link'))
    await writeConfig()
    // One container of the other account, which the attempts below aim at.
    expect((await run(OTHER, 'run', '-d', '--name', 'web', 'shien-test-busybox')).code).toBe(0)
  }, 300_000)

  afterAll(async () => {
    await removeContainers('shien-dk')
    await rm(root, {recursive: true, force: true})
  })

  const img = 'shien-test-busybox'
  it.each([
    ['--privileged'], ['--cap-add', 'SYS_ADMIN'], ['--cap-add=ALL'], ['--device', '/dev/sda'], ['--pid=host'], ['--pid', 'host'],
    ['--network=host'], ['--net', 'host'], ['--ipc=host'], ['--userns=host'], ['--security-opt', 'seccomp=unconfined'],
    ['--mount', 'type=bind,src=/,dst=/host'], ['--volumes-from', 'shien-dk4-web'], ['-p', '80:8080'], ['-p', '127.0.0.1:80:8080'],
  ])('refuses run %s', async (...flag: string[]) => {
    await refused(ME, ['run', '-d', '--name', 'x', ...flag, img], 'FLAG_REFUSED')
  })

  it('refuses --user 0 and root in any spelling', async () => {
    for (const user of ['0', 'root', '0:0', '00']) await refused(ME, ['run', '-d', '--name', 'x', '--user', user, img], 'FLAG_REFUSED')
  })

  it.each([
    ['/var/run/docker.sock:/var/run/docker.sock', 'socket'],
    ['/etc:/host-etc', 'outside your folder'],
    ['REPO/../../shien-dk4:/x', '".."'],
    ['HOME/etc-link:/x', 'leads to /etc'],
    ['HOME/other-link:/x', 'leads to'],
    ['relative/path:/x', 'full path'],
    ['REPO:relative', 'must be absolute'],
  ])('refuses the volume %s', async (spec, why) => {
    const v = spec.replace('REPO', join(home, 'repo')).replace('HOME', home)
    expect(await refused(ME, ['run', '-d', '--name', 'x', '-v', v, img], 'VOLUME_REFUSED')).toContain(why)
  })

  it("refuses another account's container by its full name, and leaves it running", async () => {
    // A full name has a hyphen, which no container name has.
    for (const cmd of ['stop', 'start', 'attach']) await refused(ME, [cmd, `${OTHER}-web`], 'BAD_NAME')
    await refused(ME, ['rm', '-f', `${OTHER}-web`], 'BAD_NAME')
    await refused(ME, ['stop', 'web'], 'NO_SUCH_CONTAINER')
  })

  it.each(['web;reboot', '../web', 'a/b', '$(id)', 'Web', '-rf', 'x'.repeat(41), 'a.b'])('refuses the name %j', async (name) => {
    await refused(ME, ['run', '-d', '--name', name, img], 'BAD_NAME')
    await refused(ME, ['stop', name], name.startsWith('-') ? 'USAGE' : 'BAD_NAME')
  })

  it('refuses an image that is neither shared nor the caller\'s own', async () => {
    for (const image of ['fedora:20', '/etc/passwd', 'docker.io/library/busybox']) await refused(ME, ['run', '-d', '--name', 'x', image], 'IMAGE_NOT_ALLOWED')
  })

  it('refuses a run when the port pool is empty', async () => {
    await writeConfig({portPool: {from: POOL.from, to: POOL.from}})
    try {
      expect(await refused(ME, ['run', '-d', '--name', 'x', img], 'POOL_EMPTY')).toContain('in use')
    } finally {
      await writeConfig()
    }
  })

  it('reports a missing engine and a failing one', async () => {
    await writeConfig({enginePath: '/nonexistent/podman'})
    await refused(ME, ['ps'], 'ENGINE_MISSING')
    await refused(ME, ['run', '-d', '--name', 'x', img], 'ENGINE_MISSING')
    await writeConfig({enginePath: '/bin/false'})
    await refused(ME, ['ps'], 'ENGINE_FAILED')
    await refused(ME, ['run', '-d', '--name', 'x', img], 'ENGINE_FAILED')
    await writeConfig()
  })

  it('refuses a config not owned by root-only writers', async () => {
    await chmod(join(root, 'config.json'), 0o666)
    try {
      await refused(ME, ['ps'], 'CONFIG_INVALID')
    } finally {
      await chmod(join(root, 'config.json'), 0o644)
    }
  })
})
