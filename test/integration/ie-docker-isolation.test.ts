import {randomBytes} from 'node:crypto'
import {access, chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {allContainers, ensureTestImage, ieDockerRunner, podman, PODMAN_SETTINGS, removeContainers} from '../support/podman.js'
import {ensureUser} from '../support/system.js'

// The isolation attacks on ie-docker, performed against the real podman: each must be refused,
// or reach only the attacker's own files, and leave containers, images, ports and the proxy
// file of everyone as they were.
const ME = 'shien-di1'
const OTHER = 'shien-di2'
const POOL = {from: 42770, to: 42799}

const exists = (path: string) => access(path).then(() => true, () => false)

describe('ie-docker isolation on the real podman', () => {
  let root: string
  const uid: Record<string, number> = {}
  const gid: Record<string, number> = {}
  const home = (account: string) => join(root, 'users', account)
  const run = ieDockerRunner(() => join(root, 'config.json'), uid)

  async function writeConfig(docker: Record<string, unknown> = {}) {
    const settings = {...PODMAN_SETTINGS, portPool: POOL, proxy: {domain: 'c.test', includeFile: join(root, 'nginx', 'containers.conf')}, ...docker}
    await writeFile(join(root, 'config.json'), JSON.stringify({storageRoot: root, docker: settings}), {mode: 0o644})
  }

  /** Containers and images of every account, the port pool and the proxy file. */
  async function state() {
    // Only these tests' accounts: other test files may build and run meanwhile.
    const images: string[] = []
    for (const a of [ME, OTHER]) {
      images.push(...(await podman('images', '-a', '--filter', `label=shien.account=${a}`, '--format', '{{.Repository}}:{{.Tag}} {{.ID}}')).stdout.split('\n').filter(Boolean))
    }
    images.sort()
    const ports = (await readdir(join(root, 'ports', 'container')).catch(() => [] as string[])).filter((f) => !f.startsWith('.')).sort()
    const proxy = await readFile(join(root, 'nginx', 'containers.conf'), 'utf8').catch(() => '')
    return {containers: (await allContainers()).filter((c) => c.startsWith('shien-di')), images, ports, proxy}
  }

  async function refused(account: string, argv: string[], code: string): Promise<string> {
    const before = await state()
    const r = await run(account, ...argv)
    expect(r.body.error?.code, JSON.stringify(r.body) + r.log).toBe(code)
    expect(r.code).toBe(6)
    expect(r.body.error.suggestions?.length ?? 0, 'says what to do').toBeGreaterThan(0)
    expect(await state()).toEqual(before)
    return r.body.error.message as string
  }

  /** A folder in `account`'s storage, owned by them, with these files. */
  async function folder(account: string, name: string, files: Record<string, string> = {}): Promise<string> {
    const dir = join(home(account), name)
    await mkdir(dir, {recursive: true})
    for (const [file, text] of Object.entries(files)) await writeFile(join(dir, file), text)
    await execa('chown', ['-R', '-h', `${uid[account]}:${gid[account]}`, dir])
    return dir
  }

  beforeAll(async () => {
    root = await mkdtemp('/var/tmp/shien-docker-isolation-')
    await chmod(root, 0o755)
    await mkdir(join(root, 'users'), {mode: 0o755})
    await ensureTestImage()
    for (const a of [ME, OTHER]) {
      uid[a] = await ensureUser(a)
      gid[a] = Number((await execa('id', ['-g', a])).stdout)
    }
    await removeContainers('shien-di')
    for (const a of [ME, OTHER]) {
      await mkdir(home(a), {recursive: true, mode: 0o700})
      await chown(home(a), uid[a], gid[a])
    }
    await writeConfig()
  }, 300_000)

  afterAll(async () => {
    await removeContainers('shien-di')
    for (const a of [ME, OTHER]) {
      const ids = (await podman('images', '--filter', `label=shien.account=${a}`, '--format', '{{.ID}}')).stdout.split('\n').filter(Boolean)
      if (ids.length > 0) await podman('rmi', '--force', ...ids)
    }
    await rm(root, {recursive: true, force: true})
  })

  describe('finding 1: root on the blade through build (CVE-2024-1753)', () => {
    // Where the attack would write if the host's / were mounted into the step.
    const marker = `shien-cve-${randomBytes(4).toString('hex')}`
    const written = ['/root', '/tmp', '/var/tmp'].map((d) => join(d, marker))
    const attack = `touch ${written.map((p) => `/host${p}`).join(' ')}`

    afterAll(async () => {
      for (const p of written) await rm(p, {force: true})
    })

    it('refuses a context with a link to / that a bind mount would follow, naming the link', async () => {
      const dir = await folder(ME, 'cve-ctx', {Containerfile: `FROM shien-test-busybox\nRUN --mount=type=bind,source=link,target=/host,rw ${attack}\n`})
      await symlink('/', join(dir, 'link'))
      await execa('chown', ['-h', `${uid[ME]}:${gid[ME]}`, join(dir, 'link')])
      const message = await refused(ME, ['build', '-t', 'pwn', dir], 'BUILD_CONTEXT')
      expect(message).toContain('link -> /')
      // Without the bind, the link alone is refused too: a context carries no links.
      await writeFile(join(dir, 'Containerfile'), 'FROM shien-test-busybox\nCOPY link /x\n')
      await refused(ME, ['build', '-t', 'pwn', dir], 'BUILD_CONTEXT')
      for (const p of written) expect(await exists(p), p).toBe(false)
    }, 120_000)

    it('refuses a bind of a link made by an earlier stage (from=), and any bind mount', async () => {
      const stage = `FROM shien-test-busybox AS s\nRUN busybox ln -s / /link\nFROM shien-test-busybox\nRUN --mount=type=bind,from=s,source=/link,target=/host,rw ${attack}\n`
      const dir = await folder(ME, 'cve-stage', {Containerfile: stage})
      expect(await refused(ME, ['build', '-t', 'pwn', dir], 'CONTAINERFILE_REFUSED')).toMatch(/line 4 \(RUN\).*bind mounts are not accepted/)
      for (const text of [
        'FROM shien-test-busybox\nRUN --mount=type=bind,target=/src,rw cat /src/Containerfile\n',
        'FROM shien-test-busybox\nRUN --mount=target=/src true\n',
      ]) {
        await writeFile(join(dir, 'Containerfile'), text)
        await refused(ME, ['build', '-t', 'pwn', dir], 'CONTAINERFILE_REFUSED')
      }
      for (const p of written) expect(await exists(p), p).toBe(false)
      expect((await podman('image', 'exists', `${ME}-pwn`)).exitCode).toBe(1)
    }, 120_000)

    it('still builds with a tmpfs mount', async () => {
      const dir = await folder(ME, 'tmpfs', {Containerfile: 'FROM shien-test-busybox\nRUN --mount=type=tmpfs,target=/scratch echo ok > /scratch/x && cat /scratch/x > /www/tmpfs.txt\n'})
      const r = await run(ME, 'build', '-t', 'tmpfs', dir)
      expect(r.code, r.log).toBe(0)
      expect((await podman('run', '--rm', ...PODMAN_SETTINGS.runArgs, `${ME}-tmpfs`, 'cat', '/www/tmpfs.txt')).stdout).toBe('ok')
      expect((await run(ME, 'rmi', 'tmpfs')).code).toBe(0)
    }, 120_000)
  })

  describe('finding 5: root inside containers', () => {
    it('runs the container in a user namespace: uid 0 inside is the caller on the host, and writes land as the caller', async () => {
      const data = await folder(ME, 'data')
      await chmod(data, 0o700)
      // Root's file in the student's folder: host root could write it, the container must not.
      await writeFile(join(data, 'root-file'), 'root\n', {mode: 0o644})
      const r = await run(ME, 'run', '-d', '--name', 'who', '-v', `${data}:/data`, 'shien-test-busybox', 'sh', '-c',
        'id > /data/id.txt; touch /data/made; echo x >> /data/root-file; echo "append=$?" > /data/append.txt; exec sleep 600')
      expect(r.code, JSON.stringify(r.body)).toBe(0)
      const container = `${ME}-who`
      let made = false
      for (let i = 0; i < 50 && !made; i++) {
        made = await exists(join(data, 'append.txt'))
        if (!made) await new Promise((res) => setTimeout(res, 100))
      }
      // Inside: uid 0. On the host: the caller, in every field of the process's credentials.
      expect(await readFile(join(data, 'id.txt'), 'utf8')).toMatch(/^uid=0(\(root\))? gid=0(\(root\))? /)
      const top = (await podman('top', container, 'huser', 'user')).stdout.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/))
      // podman names the host user: the caller.
      expect(top).toEqual([[ME, '0']])
      const pid = (await podman('inspect', '--format', '{{.State.Pid}}', container)).stdout.trim()
      const status = await readFile(`/proc/${pid}/status`, 'utf8')
      expect(status).toMatch(new RegExp(`^Uid:\\s+${uid[ME]}\\s+${uid[ME]}\\s+${uid[ME]}\\s+${uid[ME]}$`, 'm'))
      expect(status).toMatch(new RegExp(`^Gid:\\s+${gid[ME]}\\s+${gid[ME]}\\s+${gid[ME]}\\s+${gid[ME]}$`, 'm'))
      const {stat} = await import('node:fs/promises')
      expect(((await stat(join(data, 'made'))).uid)).toBe(uid[ME])
      expect(await readFile(join(data, 'append.txt'), 'utf8')).not.toBe('append=0\n')
      expect(await readFile(join(data, 'root-file'), 'utf8')).toBe('root\n')
      expect((await run(ME, 'rm', '-f', 'who')).code).toBe(0)
    }, 120_000)

    it.each(['0', '00', '0000:0000', '0:5', '5:0', 'root', 'admin', 'OTHER', 'ME:0', 'ME:OTHERGID'])('refuses --user %s', async (spelled) => {
      const user = spelled.replace('OTHERGID', String(gid[OTHER])).replace('OTHER', String(uid[OTHER])).replace('ME', String(uid[ME]))
      await refused(ME, ['run', '-d', '--name', 'x', '--user', user, 'shien-test-busybox'], 'FLAG_REFUSED')
    })

    it('refuses to start a container made without the user namespace (as before this rule)', async () => {
      const made = await podman('create', '--name', `${ME}-legacy`, '--label', `shien.account=${ME}`, ...PODMAN_SETTINGS.runArgs, 'localhost/shien-test-busybox:latest', 'sleep', '600')
      expect(made.exitCode, made.stderr).toBe(0)
      expect(await refused(ME, ['start', 'legacy'], 'CONTAINER_OUTDATED')).toContain('would run as root on the blade')
      expect((await podman('inspect', '--format', '{{.State.Status}}', `${ME}-legacy`)).stdout.trim()).toBe('created')
      expect((await run(ME, 'rm', 'legacy')).code).toBe(0)
    }, 60_000)

    it("accepts the caller's own uid, however written, and still runs as them", async () => {
      const r = await run(ME, 'run', '-d', '--name', 'own', '--user', `0${uid[ME]}:${gid[ME]}`, 'shien-test-busybox', 'sleep', '600')
      expect(r.code, JSON.stringify(r.body)).toBe(0)
      expect((await podman('top', `${ME}-own`, 'huser')).stdout.trim().split('\n').slice(1).map((l) => l.trim())).toEqual([ME])
      expect((await run(ME, 'rm', '-f', 'own')).code).toBe(0)
    }, 60_000)
  })

  describe("finding 4: another student's files through a volume", () => {
    it('refuses to start a container whose volume was swapped for a link, and the other files are never read', async () => {
      // The other student's folder is closed (0700), but a folder in it is open: only a mount
      // could take the attacker past the closed one.
      const theirs = await folder(OTHER, 'pub', {'secret.txt': 'secret of shien-di2\n'})
      await chmod(home(OTHER), 0o700)
      await chmod(theirs, 0o755)
      const mine = await folder(ME, 'site', {'mine.txt': 'mine\n'})
      const r = await run(ME, 'run', '-d', '--name', 'vol', '-v', `${mine}:/data:ro`, 'shien-test-busybox', 'sh', '-c', 'cat /data/*.txt; exec sleep 600')
      expect(r.code, JSON.stringify(r.body)).toBe(0)
      const logs = async () => (await podman('logs', `${ME}-vol`)).stdout + (await podman('logs', `${ME}-vol`)).stderr
      for (let i = 0; i < 50 && !(await logs()).includes('mine'); i++) await new Promise((res) => setTimeout(res, 100))
      expect(await logs()).toContain('mine')
      expect((await run(ME, 'stop', 'vol')).code).toBe(0)

      await rm(mine, {recursive: true})
      for (const target of [theirs, '/etc']) {
        await rm(mine, {force: true})
        await symlink(target, mine)
        await execa('chown', ['-h', `${uid[ME]}:${gid[ME]}`, mine])
        const message = await refused(ME, ['start', 'vol'], 'VOLUME_REFUSED')
        // Resolved as the attacker: the other's closed folder cannot even be entered.
        expect(message).toMatch(target === '/etc' ? /it leads to \/etc, outside your folder/ : /you cannot reach it/)
        expect((await podman('inspect', '--format', '{{.State.Status}}', `${ME}-vol`)).stdout.trim()).toBe('exited')
      }
      expect(await logs()).not.toContain('secret')
      expect(await logs()).not.toMatch(/root:x:0/)

      // A link on the way to it is refused too, and the real folder back in place starts again.
      await rm(mine, {force: true})
      await mkdir(`${mine}.real`)
      await writeFile(`${mine}.real/mine.txt`, 'mine again\n')
      await execa('chown', ['-R', `${uid[ME]}:${gid[ME]}`, `${mine}.real`])
      await symlink(`${mine}.real`, mine)
      expect(await refused(ME, ['start', 'vol'], 'VOLUME_REFUSED')).toContain('leads to')
      await rm(mine)
      await execa('mv', [`${mine}.real`, mine])
      expect((await run(ME, 'start', 'vol')).code).toBe(0)
      for (let i = 0; i < 50 && !(await logs()).includes('mine again'); i++) await new Promise((res) => setTimeout(res, 100))
      expect(await logs()).toContain('mine again')
      expect((await run(ME, 'rm', '-f', 'vol')).code).toBe(0)
    }, 120_000)

    it("resolves a volume as the caller at run: a link into a folder they cannot enter is refused", async () => {
      const theirs = join(home(OTHER), 'pub')
      const link = join(home(ME), 'to-theirs')
      await symlink(theirs, link)
      await execa('chown', ['-h', `${uid[ME]}:${gid[ME]}`, link])
      expect(await refused(ME, ['run', '-d', '--name', 'x', '-v', `${link}:/x`, 'shien-test-busybox'], 'VOLUME_REFUSED')).toContain('cannot reach it')
      expect(await refused(ME, ['run', '-d', '--name', 'x', '-v', `${theirs}:/x`, 'shien-test-busybox'], 'VOLUME_REFUSED')).toContain('cannot reach it')
      await writeFile(join(home(ME), 'a-file'), 'x')
      expect(await refused(ME, ['run', '-d', '--name', 'x', '-v', `${join(home(ME), 'a-file')}:/x`, 'shien-test-busybox'], 'VOLUME_REFUSED')).toContain('only folders')
    }, 60_000)
  })

  describe('finding 9: the port pool taken by one container or account', () => {
    afterAll(async () => {
      await writeConfig()
    })

    it('refuses more ports per container and per account than the limits, before anything changes', async () => {
      await writeConfig({limits: {default: {portsPerContainer: 2, portsPerAccount: 3}}})
      // The image exposes 8080: with two -p that is three ports.
      expect(await refused(ME, ['run', '-d', '--name', 'p1', '-p', '9000', '-p', '9001', 'shien-test-busybox'], 'PORT_LIMIT')).toMatch(/3 ports \(8080, 9000, 9001\).*limit of 2 per container/)
      const many = Array.from({length: 40}, (_, i) => ['-p', String(10_000 + i)]).flat()
      await refused(ME, ['run', '-d', '--name', 'p1', ...many, 'shien-test-busybox'], 'PORT_LIMIT')
      expect((await run(ME, 'run', '-d', '--name', 'p1', '-p', '9000', 'shien-test-busybox')).body.ports).toHaveLength(2)
      expect(await refused(ME, ['run', '-d', '--name', 'p2', '-p', '9000', 'shien-test-busybox'], 'PORT_LIMIT')).toMatch(/hold 2 host ports; 2 more would pass your limit of 3/)
      // The other account's ports are its own.
      expect((await run(OTHER, 'run', '-d', '--name', 'p1', '-p', '9000', 'shien-test-busybox')).body.ports).toHaveLength(2)
      expect((await run(ME, 'run', '-d', '--name', 'p2', 'shien-test-busybox')).body.ports).toHaveLength(1)
      await refused(ME, ['run', '-d', '--name', 'p3', 'shien-test-busybox'], 'PORT_LIMIT')
      // Removing one gives its ports back to the account.
      expect((await run(ME, 'rm', '-f', 'p1')).code).toBe(0)
      expect((await run(ME, 'run', '-d', '--name', 'p3', 'shien-test-busybox')).code).toBe(0)
      for (const [a, n] of [[ME, 'p2'], [ME, 'p3'], [OTHER, 'p1']]) expect((await run(a, 'rm', '-f', n)).code).toBe(0)
    }, 120_000)

    it('refuses a config whose port limits are not whole positive numbers', async () => {
      for (const limits of [{default: {portsPerContainer: 1.5}}, {default: {}, groups: {staff: {portsPerAccount: -1}}}]) {
        await writeConfig({limits})
        const r = await run(ME, 'run', '-d', '--name', 'x', 'shien-test-busybox')
        expect(r.body.error?.code).toBe('CONFIG_INVALID')
        expect(r.body.error.message).toMatch(/ports(PerContainer|PerAccount) must be a positive whole number/)
      }
    })
  })

  describe('finding 10: ambiguous names and image storage', () => {
    // `shien-dq` + `5701-web` and `shien-dq-5701` + `web` would both be `shien-dq-5701-web`.
    const SHORT = 'shien-dq'
    const LONG = 'shien-dq-5701'
    const UNDERSCORE = 'shien_dq'

    beforeAll(async () => {
      for (const a of [SHORT, LONG, UNDERSCORE]) {
        uid[a] = await ensureUser(a)
        await mkdir(home(a), {recursive: true, mode: 0o700})
        await chown(home(a), uid[a], uid[a])
      }
    })

    afterAll(async () => {
      await removeContainers('shien-dq')
    })

    it("keeps the two accounts' names apart: a name with a hyphen is refused, the longer account gets its own", async () => {
      const before = (await allContainers()).filter((c) => c.startsWith('shien-dq'))
      for (const argv of [['run', '-d', '--name', '5701-web', 'shien-test-busybox'], ['stop', '5701-web'], ['start', '5701-web']]) {
        const r = await run(SHORT, ...argv)
        expect(r.body.error?.code, JSON.stringify(r.body)).toBe('BAD_NAME')
        expect(r.body.error.message).toContain('no hyphens')
      }
      expect((await allContainers()).filter((c) => c.startsWith('shien-dq'))).toEqual(before)
      const ran = await run(LONG, 'run', '-d', '--name', 'web', 'shien-test-busybox')
      expect(ran.code, JSON.stringify(ran.body)).toBe(0)
      expect(ran.body.url).toBe(`http://${LONG}-web.c.test/`)
      // The shorter account sees nothing of it, under any name.
      expect((await run(SHORT, 'ps')).body.containers).toEqual([])
      expect((await run(SHORT, 'rm', '-f', '5701-web')).body.error.code).toBe('BAD_NAME')
      expect((await podman('inspect', '--format', '{{.State.Status}}', `${LONG}-web`)).stdout.trim()).toBe('running')
      const proxy = await readFile(join(root, 'nginx', 'containers.conf'), 'utf8')
      expect(proxy.match(/server_name shien-dq-5701-web\.c\.test;/g)).toHaveLength(1)
      expect((await run(LONG, 'rm', '-f', 'web')).code).toBe(0)
      // An image name with a hyphen cannot be made either.
      expect((await run(SHORT, 'build', '-t', '5701-web', home(SHORT))).body.error.code).toBe('BAD_NAME')
    }, 60_000)

    it('refuses an account whose name cannot be part of a host name, before anything changes', async () => {
      for (const argv of [['ps'], ['run', '-d', '--name', 'web', 'shien-test-busybox']]) {
        const r = await run(UNDERSCORE, ...argv)
        expect(r.body.error?.code).toBe('ACCOUNT_NOT_SUPPORTED')
        expect(r.code).toBe(6)
        expect(r.body.error.message).toContain(`Account ${UNDERSCORE} cannot use containers`)
        expect(r.body.error.suggestions[0]).toMatch(/admin/)
      }
      expect((await allContainers()).filter((c) => c.startsWith('shien_dq'))).toEqual([])
    })
  })

  describe('finding 10: image count and storage per account', () => {
    afterAll(async () => {
      await writeConfig()
    })

    it('refuses a build over the image count before it starts; building over an existing tag is fine', async () => {
      await writeConfig({limits: {default: {images: 2}}})
      const dir = await folder(ME, 'count', {Containerfile: 'FROM shien-test-busybox\nRUN echo one > /one\n'})
      for (const tag of ['one', 'two']) expect((await run(ME, 'build', '-t', tag, dir)).code).toBe(0)
      expect(await refused(ME, ['build', '-t', 'three', dir], 'IMAGE_LIMIT')).toContain('You have 2 images, your limit is 2')
      const again = await run(ME, 'build', '-t', 'one', '--no-cache', dir)
      expect(again.code, again.log).toBe(0)
      // The image it replaced is not left behind as a dangling one.
      const dangling = (await podman('images', '--filter', `label=shien.account=${ME}`, '--filter', 'dangling=true', '--format', '{{.ID}}')).stdout.trim()
      expect(dangling).toBe('')
      for (const tag of ['one', 'two']) expect((await run(ME, 'rmi', tag)).code).toBe(0)
    }, 180_000)

    it('removes an image that takes the account over its storage, and the layers of a failed build', async () => {
      // The test image is about 3 MiB: one fits in 5 MiB, one with 3 MiB more does not.
      await writeConfig({limits: {default: {imageStorageMiB: 5}}})
      const small = await folder(ME, 'small', {Containerfile: 'FROM shien-test-busybox\nRUN echo small > /small\n'})
      expect((await run(ME, 'build', '-t', 'small', small)).code).toBe(0)
      const big = await folder(ME, 'big', {Containerfile: 'FROM shien-test-busybox\nRUN echo first > /first\nRUN busybox dd if=/dev/zero of=/big bs=1M count=3\n'})
      const before = await state()
      const r = await run(ME, 'build', '-t', 'big', big)
      expect(r.body.error?.code, JSON.stringify(r.body)).toBe('IMAGE_STORAGE_LIMIT')
      expect(r.body.error.message).toMatch(/your limit is 5 MiB: the image just built \(shien-di1-big:latest\) was removed again/)
      // No image, tagged or intermediate, is left of it.
      expect(await state()).toEqual(before)
      // Already over: the next build is refused before it starts.
      await writeConfig({limits: {default: {imageStorageMiB: 2}}})
      expect(await refused(ME, ['build', '-t', 'big', big], 'IMAGE_STORAGE_LIMIT')).toMatch(/your limit is 2 MiB\.$/)
      await writeConfig()
      const failing = await folder(ME, 'failing', {Containerfile: 'FROM shien-test-busybox\nRUN echo first > /first\nRUN exit 7\n'})
      const beforeFail = await state()
      const failed = await run(ME, 'build', '-t', 'failing', failing)
      expect(failed.body.error?.code).toBe('ENGINE_FAILED')
      expect(await state()).toEqual(beforeFail)
      expect((await run(ME, 'rmi', 'small')).code).toBe(0)
    }, 180_000)
  })
})
