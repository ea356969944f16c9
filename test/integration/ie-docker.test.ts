import {chown, mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {cgroupMemoryLimit, ensureTestImage, ieDockerRunner, podman, PODMAN_SETTINGS, removeContainers} from '../support/podman.js'
import {ensureUser} from '../support/system.js'

// ie-docker against the real podman (runc) as root, as two students would use it through sudo.
const ME = 'shien-dk1'
const OTHER = 'shien-dk2'
const ADMIN = 'shien-dka'
const POOL = {from: 42700, to: 42719}

describe('ie-docker on real podman', () => {
  let root: string
  const uid: Record<string, number> = {}

  const run = ieDockerRunner(() => join(root, 'config.json'), uid)

  beforeAll(async () => {
    root = await mkdtemp('/var/tmp/shien-docker-')
    await ensureTestImage()
    for (const a of [ME, OTHER]) uid[a] = await ensureUser(a)
    uid[ADMIN] = await ensureUser(ADMIN, ['shien-admin'])
    await removeContainers('shien-dk')
    for (const a of [ME, OTHER]) {
      await mkdir(join(root, 'users', a), {recursive: true, mode: 0o700})
      await chown(join(root, 'users', a), uid[a], uid[a])
    }
    const docker = {...PODMAN_SETTINGS, portPool: POOL, proxy: {domain: 'c.test', includeFile: join(root, 'nginx', 'containers.conf')}, limits: {default: {containers: 8, memoryMiB: 64, cpus: 1}}}
    await writeFile(join(root, 'config.json'), JSON.stringify({storageRoot: root, adminGroup: 'shien-admin', docker}), {mode: 0o644})
  }, 300_000)

  afterAll(async () => {
    await removeContainers('shien-dk')
    await rm(root, {recursive: true, force: true})
  })

  it('runs a container with the memory cap in its cgroup, a pool port that answers HTTP, and a proxy entry', async () => {
    const r = await run(ME, 'run', '-d', '--name', 'web', 'shien-test-busybox')
    expect(r.code).toBe(0)
    expect(r.body).toMatchObject({name: 'web', container: `${ME}-web`, ports: [{container: 8080, host: POOL.from}], url: `http://${ME}-web.c.test/`})
    expect(await cgroupMemoryLimit(`${ME}-web`)).toBe(64 * 1024 * 1024)
    let body = ''
    for (let i = 0; i < 50 && body === ''; i++) {
      body = await fetch(`http://127.0.0.1:${POOL.from}/`).then((res) => res.text()).catch(() => '')
      if (body === '') await new Promise((res) => setTimeout(res, 100))
    }
    expect(body).toContain('hello from shien')
    const proxy = await readFile(join(root, 'nginx', 'containers.conf'), 'utf8')
    expect(proxy).toContain(`server_name ${ME}-web.c.test;`)
    expect(proxy).toContain(`proxy_pass http://127.0.0.1:${POOL.from};`)
    expect((await run(ME, 'ps')).body.containers).toMatchObject([{name: 'web', container: `${ME}-web`, ports: [{host: POOL.from}]}])
  })

  it('keeps a smaller -m and refuses a larger one', async () => {
    const small = await run(ME, 'run', '-d', '--name', 'small', '-m', '32m', 'shien-test-busybox')
    expect(small.code).toBe(0)
    expect(await cgroupMemoryLimit(`${ME}-small`)).toBe(32 * 1024 * 1024)
    const big = await run(ME, 'run', '-d', '--name', 'big', '-m', '1g', 'shien-test-busybox')
    expect(big.body.error.code).toBe('OVER_LIMIT')
    expect((await podman('container', 'exists', `${ME}-big`)).exitCode).toBe(1)
    expect((await run(ME, 'rm', '-f', 'small')).code).toBe(0)
  })

  it("does not let another account see, stop or remove a container, even by its full name", async () => {
    // The full name is not a name at all (names have no hyphen): refused as such.
    for (const [name, code, exit] of [['web', 'NO_SUCH_CONTAINER', 6], [`${ME}-web`, 'BAD_NAME', 2]] as const) {
      const r = await run(OTHER, 'stop', name)
      expect(r.code).toBe(exit)
      expect(r.body.error.code).toBe(code)
      expect((await run(OTHER, 'rm', '-f', name)).body.error.code).toBe(code)
    }
    expect((await run(OTHER, 'ps')).body.containers).toEqual([])
    expect((await podman('inspect', '--format', '{{.State.Status}}', `${ME}-web`)).stdout.trim()).toBe('running')
  })

  it('stops, starts and removes its own container, and rm returns the port to the pool', async () => {
    expect((await run(ME, 'stop', 'web')).body.action).toBe('stopped')
    expect((await podman('inspect', '--format', '{{.State.Status}}', `${ME}-web`)).stdout.trim()).toBe('exited')
    expect((await run(ME, 'start', 'web')).body.action).toBe('started')
    expect((await podman('inspect', '--format', '{{.State.Status}}', `${ME}-web`)).stdout.trim()).toBe('running')
    expect((await run(ME, 'rm', 'web')).body.error.code).toBe('CONTAINER_RUNNING')
    const removed = await run(ME, 'rm', '-f', 'web')
    expect(removed.body).toMatchObject({action: 'removed', freedPorts: [POOL.from]})
    expect((await podman('container', 'exists', `${ME}-web`)).exitCode).toBe(1)
    expect((await readdir(join(root, 'ports', 'container'))).filter((f) => !f.startsWith('.'))).toEqual([])
    expect(await readFile(join(root, 'nginx', 'containers.conf'), 'utf8')).not.toContain('server_name')
  })

  it('refuses the ninth container of an account', async () => {
    for (let i = 1; i <= 8; i++) expect((await run(OTHER, 'run', '-d', '--name', `c${i}`, 'shien-test-busybox', 'sleep', '600')).code).toBe(0)
    const ninth = await run(OTHER, 'run', '-d', '--name', 'c9', 'shien-test-busybox', 'sleep', '600')
    expect(ninth.code).toBe(6)
    expect(ninth.body.error.code).toBe('CONTAINER_LIMIT')
    expect((await podman('container', 'exists', `${OTHER}-c9`)).exitCode).toBe(1)
    expect((await run(OTHER, 'ps')).body.containers).toHaveLength(8)
    // The refused run took no port: the eight hold exactly eight.
    expect((await readdir(join(root, 'ports', 'container'))).filter((f) => !f.startsWith('.'))).toHaveLength(8)
  }, 120_000)

  it("lets an admin list, stop and remove a student's container with --account, and nobody else", async () => {
    expect((await run(ME, 'run', '-d', '--name', 'adm', 'shien-test-busybox')).code).toBe(0)
    const status = async () => (await podman('inspect', '--format', '{{.State.Status}}', `${ME}-adm`)).stdout.trim()

    // Another student naming the account is refused, and the container is left as it was.
    for (const argv of [['ps'], ['stop', 'adm'], ['rm', '-f', 'adm']]) {
      const r = await run(OTHER, '--account', ME, ...argv)
      expect(r.code).toBe(6)
      expect(r.body.error.code).toBe('NOT_ADMIN')
      expect(r.body.error.message).toContain("another account's containers")
    }
    expect(await status()).toBe('running')

    const listed = await run(ADMIN, '--account', ME, 'ps')
    expect(listed.body.containers).toMatchObject([{name: 'adm', container: `${ME}-adm`}])
    // The admin's own view has none of the student's containers.
    expect((await run(ADMIN, 'ps')).body.containers).toEqual([])
    expect((await run(ADMIN, '--account', ME, 'stop', 'adm')).body.action).toBe('stopped')
    expect(await status()).toBe('exited')
    const removed = await run(ADMIN, '--account', ME, 'rm', '-f', 'adm')
    expect(removed.body).toMatchObject({action: 'removed', freedPorts: [expect.any(Number)]})
    expect((await podman('container', 'exists', `${ME}-adm`)).exitCode).toBe(1)
  })

  it('lists the shared image as runnable', async () => {
    const r = await run(ME, 'images')
    expect(r.body.images).toMatchObject([{name: 'shien-test-busybox:latest', shared: true}])
  })
})
