import {chmod, chown, mkdir, mkdtemp, readdir, rm, symlink, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runShien} from '../support/cli.js'
import {ensureLocalBlade, type LocalBlade} from '../support/local-blade.js'
import {ensureTestImage, ieDockerRunner, podman, PODMAN_SETTINGS, removeContainers} from '../support/podman.js'
import {ensureUser} from '../support/system.js'

// ie-docker build against the real podman: students build images from folders in their own
// storage, and nothing in a Containerfile or a context reaches another student's image or the
// blade's files. Each refusal leaves the engine's images as they were.
const ME = 'shien-db1'
const OTHER = 'shien-db2'
const POOL = {from: 42750, to: 42759}
const MEMORY_MIB = 200

describe('ie-docker build on the real podman', () => {
  let root: string
  const uid: Record<string, number> = {}
  const home = (account: string) => join(root, 'users', account)

  const run = ieDockerRunner(() => join(root, 'config.json'), uid)

  /** The images of these tests' accounts and the shared one, and the build copies in the temporary folder. */
  async function state() {
    const ours = (ref: string) => ref.includes('/shien-db') || ref.includes('/shien-test-busybox:')
    const images = (await podman('images', '--format', '{{.Repository}}:{{.Tag}}')).stdout.split('\n').filter(ours).sort()
    const copies = (await readdir(tmpdir())).filter((f) => f.startsWith('ie-docker-build-'))
    return {images, copies}
  }

  async function refused(account: string, argv: string[], code: string): Promise<string> {
    const before = await state()
    const r = await run(account, ...argv)
    expect(r.body.error?.code, JSON.stringify(r.body)).toBe(code)
    expect(r.code).not.toBe(0)
    expect(await state()).toEqual(before)
    return r.body.error.message as string
  }

  /** A folder in `account`'s storage, owned by them, with these files. */
  async function context(account: string, name: string, files: Record<string, string>): Promise<string> {
    const dir = join(home(account), name)
    await mkdir(dir, {recursive: true})
    for (const [file, text] of Object.entries(files)) {
      await mkdir(join(dir, file, '..'), {recursive: true})
      await writeFile(join(dir, file), text)
    }
    await podmanOwned(dir, account)
    return dir
  }

  async function podmanOwned(dir: string, account: string) {
    const {execa} = await import('execa')
    await execa('chown', ['-R', '-h', `${uid[account]}:${uid[account]}`, dir])
  }

  /** Runs a command in a new container of `image` (as root: the test reads what the image holds). */
  const inImage = (image: string, ...command: string[]) => podman('run', '--rm', ...PODMAN_SETTINGS.runArgs, image, ...command)

  const imageOwner = async (image: string) =>
    (await podman('image', 'inspect', '--format', '{{index .Config.Labels "shien.account"}}', image)).stdout.trim()

  const savedTmpdir = process.env.TMPDIR

  beforeAll(async () => {
    root = await mkdtemp('/var/tmp/shien-docker-build-')
    // As on the blade's storage: students pass through the root and users/ to their own folder.
    await chmod(root, 0o755)
    await mkdir(join(root, 'users'), {mode: 0o755})
    // ie-docker (run in this process) copies build contexts into a temporary folder: this test's
    // own, so the copies it counts are its builds' and no other test's running meanwhile.
    await mkdir(join(root, 'tmp'), {mode: 0o700})
    process.env.TMPDIR = join(root, 'tmp')
    await ensureTestImage()
    for (const a of [ME, OTHER]) uid[a] = await ensureUser(a)
    await removeContainers('shien-db')
    for (const a of [ME, OTHER]) {
      await mkdir(home(a), {recursive: true, mode: 0o700})
      await chown(home(a), uid[a], uid[a])
      await podman('rmi', '--force', `localhost/${a}-web:latest`, `localhost/${a}-app:latest`)
    }
    const settings = {
      ...PODMAN_SETTINGS,
      portPool: POOL,
      proxy: {domain: 'c.test', includeFile: join(root, 'nginx', 'containers.conf')},
      limits: {default: {containers: 8, memoryMiB: MEMORY_MIB, cpus: 1}},
      buildContextMiB: 1,
    }
    await writeFile(join(root, 'config.json'), JSON.stringify({storageRoot: root, docker: settings}), {mode: 0o644})
  }, 300_000)

  afterAll(async () => {
    if (savedTmpdir === undefined) delete process.env.TMPDIR
    else process.env.TMPDIR = savedTmpdir
    await removeContainers('shien-db')
    for (const a of [ME, OTHER]) await podman('rmi', '--force', `localhost/${a}-web:latest`, `localhost/${a}-app:latest`)
    await rm(root, {recursive: true, force: true})
  })

  it('builds the student\'s image, with their label and memory cap, which they alone can see, run and remove', async () => {
    const dir = await context(ME, 'web', {
      'Containerfile': [
        'FROM shien-test-busybox',
        'COPY site/index.html /www/index.html',
        // What the build step's cgroup allows, read from inside it (cgroup v2, or v1).
        'RUN cat /sys/fs/cgroup/memory.max 2>/dev/null > /www/memory || cat /sys/fs/cgroup/memory/memory.limit_in_bytes > /www/memory',
        `LABEL shien.account=${OTHER}`,
      ].join('\n'),
      'site/index.html': 'built by shien-db1\n',
    })
    const before = await state()
    const built = await run(ME, 'build', '-t', 'web', dir)
    expect(built.code, built.log).toBe(0)
    expect(built.body).toMatchObject({name: 'web:latest', image: `${ME}-web:latest`, skipped: []})
    expect(built.log).toMatch(/COPY site\/index.html/)
    // The label is the builder's, whatever LABEL the file sets; the copy of the context is gone.
    expect(await imageOwner(`${ME}-web:latest`)).toBe(ME)
    expect((await state()).copies).toEqual(before.copies)
    const memory = await inImage(`${ME}-web:latest`, 'cat', '/www/memory')
    expect(Number(memory.stdout.trim())).toBe(MEMORY_MIB * 1024 * 1024)

    expect((await run(ME, 'images')).body.images).toContainEqual(expect.objectContaining({name: 'web:latest', shared: false}))
    expect((await run(OTHER, 'images')).body.images.map((i: {image: string}) => i.image)).not.toContain(`${ME}-web:latest`)

    const ran = await run(ME, 'run', '-d', '--name', 'site', 'web')
    expect(ran.code, JSON.stringify(ran.body)).toBe(0)
    let body = ''
    for (let i = 0; i < 50 && body === ''; i++) {
      body = await fetch(`http://127.0.0.1:${ran.body.ports[0].host as number}/`).then((r) => r.text()).catch(() => '')
      if (body === '') await new Promise((r) => setTimeout(r, 100))
    }
    expect(body).toBe('built by shien-db1\n')

    await refused(OTHER, ['run', '-d', '--name', 'x', `${ME}-web`], 'IMAGE_NOT_ALLOWED')
    await refused(OTHER, ['rmi', 'web'], 'NO_SUCH_IMAGE')
    expect((await run(ME, 'rm', '--force', 'site')).code).toBe(0)
    expect((await run(ME, 'rmi', 'web')).code).toBe(0)
    expect((await podman('image', 'exists', `${ME}-web:latest`)).exitCode).toBe(1)
  }, 300_000)

  it('builds from the student\'s own image and an earlier stage, with -f, --target and --build-arg', async () => {
    const base = await context(ME, 'base', {Containerfile: 'FROM shien-test-busybox\nRUN echo base > /base.txt\n'})
    expect((await run(ME, 'build', '-t', 'web:base', base)).code).toBe(0)
    const dir = await context(ME, 'app', {
      'build/App.containerfile': 'FROM web:base AS first\nARG GREETING=none\nRUN echo "$GREETING" > /greeting\nFROM scratch AS unused\nFROM shien-test-busybox AS final\nCOPY --from=first /base.txt /greeting /\n',
    })
    const built = await run(ME, 'build', '-t', 'app', '-f', join(dir, 'build/App.containerfile'), '--target', 'final', '--build-arg', 'GREETING=hello', dir)
    expect(built.code, built.log).toBe(0)
    expect((await inImage(`${ME}-app:latest`, 'cat', '/base.txt', '/greeting')).stdout).toBe('base\nhello')
    expect((await run(ME, 'rmi', 'web:base')).code).toBe(0)
  }, 300_000)

  it.each([
    ['FROM another student\'s image', 'FROM shien-db1-web:base\n', 'IMAGE_NOT_ALLOWED'],
    ['FROM another student\'s image by its engine name', 'FROM localhost/shien-db1-web:base\n', 'IMAGE_NOT_ALLOWED'],
    ['COPY --from another student\'s image', 'FROM shien-test-busybox\nCOPY --from=shien-db1-web:base /base.txt /\n', 'IMAGE_NOT_ALLOWED'],
    ['a cache mount shared with every build', 'FROM shien-test-busybox\nRUN --mount=type=cache,target=/c true\n', 'CONTAINERFILE_REFUSED'],
    ['ONBUILD', 'FROM shien-test-busybox\nONBUILD RUN true\n', 'CONTAINERFILE_REFUSED'],
  ])('refuses %s, and builds nothing', async (_what, containerfile, code) => {
    const base = await context(ME, 'base2', {Containerfile: 'FROM shien-test-busybox\nRUN echo base > /base.txt\n'})
    expect((await run(ME, 'build', '-t', 'web:base', base)).code).toBe(0)
    const dir = await context(OTHER, 'steal', {Containerfile: containerfile})
    await refused(OTHER, ['build', '-t', 'app', dir], code)
    expect((await run(ME, 'rmi', 'web:base')).code).toBe(0)
  }, 120_000)

  it('refuses contexts and Containerfiles outside the student\'s folder, and flags that are not on the list', async () => {
    const dir = await context(ME, 'ok', {Containerfile: 'FROM shien-test-busybox\n'})
    await symlink('/etc', join(home(ME), 'etc-link'))
    await symlink(home(OTHER), join(home(ME), 'other-link'))
    await context(OTHER, 'theirs', {Containerfile: 'FROM shien-test-busybox\n'})
    expect(await refused(ME, ['build', '-t', 'app', '/etc'], 'BUILD_CONTEXT')).toContain('outside')
    expect(await refused(ME, ['build', '-t', 'app', join(home(ME), 'etc-link')], 'BUILD_CONTEXT')).toContain('leads to /etc')
    // Resolved as the student, another student's folder cannot even be seen to exist.
    expect(await refused(ME, ['build', '-t', 'app', join(home(ME), 'other-link', 'theirs')], 'BUILD_CONTEXT')).toContain('cannot reach it')
    expect(await refused(ME, ['build', '-t', 'app', join(dir, '..', '..', OTHER, 'theirs')], 'BUILD_CONTEXT')).toContain('cannot reach it')
    expect(await refused(ME, ['build', '-t', 'app', join(dir, '..', '..', OTHER, 'no-such-folder')], 'BUILD_CONTEXT')).toContain('cannot reach it')
    expect(await refused(ME, ['build', '-t', 'app', '-f', '/etc/passwd', dir], 'BUILD_CONTEXT')).toContain('Containerfile /etc/passwd')
    await refused(ME, ['build', '-t', 'app', '--volume', '/etc:/etc', dir], 'FLAG_REFUSED')
    await refused(ME, ['build', '-t', 'app', '--network=host', dir], 'FLAG_REFUSED')
    await refused(ME, ['build', '-t', 'x/../y', dir], 'BAD_NAME')
  }, 120_000)

  it('reads the context with the student\'s rights only: a file they cannot read stops the build', async () => {
    const dir = await context(ME, 'secret', {Containerfile: 'FROM shien-test-busybox\nCOPY . /ctx\n'})
    await writeFile(join(dir, 'root-only'), 'not yours\n', {mode: 0o600})
    expect(await refused(ME, ['build', '-t', 'app', dir], 'BUILD_CONTEXT')).toMatch(/Cannot read the build context.*root-only/)
  }, 120_000)

  it('refuses links in the context, naming them, and builds nothing', async () => {
    const dir = await context(ME, 'links', {Containerfile: 'FROM shien-test-busybox\nCOPY shadow etc/passwd /stolen/\n'})
    await symlink('/etc/shadow', join(dir, 'shadow'))
    await symlink('/etc', join(dir, 'etc'))
    await podmanOwned(dir, ME)
    expect(await refused(ME, ['build', '-t', 'app', dir], 'BUILD_CONTEXT')).toMatch(/symbolic link: (shadow -> \/etc\/shadow|etc -> \/etc)/)
    expect((await state()).copies.length).toBe(0)
  }, 120_000)

  it('stops a context above the configured size, and a failing step, leaving no image and no copy', async () => {
    const big = await context(ME, 'big', {Containerfile: 'FROM shien-test-busybox\n', 'blob': 'x'.repeat(1024 * 1024 + 1)})
    expect(await refused(ME, ['build', '-t', 'app', big], 'BUILD_CONTEXT_TOO_BIG')).toContain('1 MiB')
    const failing = await context(ME, 'failing', {Containerfile: 'FROM shien-test-busybox\nRUN echo step-ran && exit 7\n'})
    const before = await state()
    const r = await run(ME, 'build', '-t', 'app', failing)
    expect(r.code).toBe(5)
    expect(r.body.error.code).toBe('ENGINE_FAILED')
    expect(r.log).toContain('step-ran')
    expect(await state()).toEqual(before)
  }, 120_000)

  it("treats an image as the student's only with both their prefix and their label, and never removes a shared one", async () => {
    // Made by someone else (an admin, say) under the student's prefix, labelled for another account.
    const dir = await mkdtemp(join(tmpdir(), 'shien-fake-image-'))
    try {
      await writeFile(join(dir, 'Containerfile'), 'FROM localhost/shien-test-busybox:latest\n')
      const made = await podman('build', '--pull=never', ...PODMAN_SETTINGS.buildArgs, '--label', `shien.account=${OTHER}`, '-t', `localhost/${ME}-fake:latest`, dir)
      expect(made.exitCode, made.stderr).toBe(0)
    } finally {
      await rm(dir, {recursive: true, force: true})
    }
    try {
      expect((await run(ME, 'images')).body.images.map((i: {name: string}) => i.name)).not.toContain('fake:latest')
      await refused(ME, ['run', '-d', '--name', 'x', 'fake'], 'IMAGE_NOT_ALLOWED')
      await refused(ME, ['rmi', 'fake'], 'NO_SUCH_IMAGE')
      await refused(ME, ['build', '-t', 'y', await context(ME, 'fake-base', {Containerfile: 'FROM fake\n'})], 'IMAGE_NOT_ALLOWED')
      for (const shared of ['shien-test-busybox', 'localhost/shien-test-busybox:latest']) await refused(ME, ['rmi', shared], 'BAD_NAME')
      expect((await podman('image', 'exists', 'localhost/shien-test-busybox:latest')).exitCode).toBe(0)
    } finally {
      await podman('rmi', '--force', `localhost/${ME}-fake:latest`)
    }
  }, 120_000)

  it('takes a relative folder from the working directory, as sudo keeps it', async () => {
    await context(ME, 'rel/app', {Containerfile: 'FROM shien-test-busybox\nRUN echo relative > /www/rel.txt\n'})
    const cwd = process.cwd()
    process.chdir(join(home(ME), 'rel'))
    try {
      const r = await run(ME, 'build', '-t', 'app', 'app')
      expect(r.code, r.log).toBe(0)
      // `..` from inside the student's folder is resolved, then checked like any other path.
      expect(await refused(ME, ['build', '-t', 'app', '../../..'], 'BUILD_CONTEXT')).toContain('outside')
    } finally {
      process.chdir(cwd)
    }
    expect((await inImage(`${ME}-app:latest`, 'cat', '/www/rel.txt')).stdout).toBe('relative')
    expect((await run(ME, 'rmi', 'app')).code).toBe(0)
  }, 120_000)

  it('says which folder has no Containerfile', async () => {
    const empty = await context(ME, 'empty', {'README': 'no containerfile here\n'})
    expect(await refused(ME, ['build', '-t', 'app', empty], 'USAGE')).toMatch(/no Containerfile or Dockerfile/)
    await chmod(empty, 0o755)
  })
})

describe('shien container build from the laptop, through the sudo rule on the local blade', () => {
  let blade: LocalBlade
  let dir: string

  beforeAll(async () => {
    blade = await ensureLocalBlade()
    await ensureTestImage()
    await podman('rmi', '--force', `localhost/${blade.account}-lapimg:latest`)
    dir = join(blade.storageRoot, 'users', blade.account, 'build-test')
    await rm(dir, {recursive: true, force: true})
    await mkdir(dir)
    await writeFile(join(dir, 'Containerfile'), 'FROM shien-test-busybox\nRUN echo from-the-laptop > /www/index.html\n')
    const {execa} = await import('execa')
    await execa('chown', ['-R', `${blade.account}:`, dir])
  }, 900_000)

  afterAll(async () => {
    if (blade === undefined) return
    await podman('rmi', '--force', `localhost/${blade.account}-lapimg:latest`)
    await rm(dir, {recursive: true, force: true})
  })

  it('builds the image on the blade as the student\'s, and removes it again', async () => {
    const built = await runShien(['container', 'build', '--host', blade.hostAlias, '--json', '--', '-t', 'lapimg', dir], {home: blade.laptopHome})
    expect(built.exitCode, built.stderr).toBe(0)
    expect(built.json).toMatchObject({name: 'lapimg:latest', image: `${blade.account}-lapimg:latest`})
    // The blade's build steps reach the laptop's stderr.
    expect(built.stderr).toMatch(/RUN echo from-the-laptop/)
    expect((await podman('image', 'inspect', '--format', '{{index .Config.Labels "shien.account"}}', `${blade.account}-lapimg:latest`)).stdout.trim()).toBe(blade.account)

    // The other student cannot build from it, nor remove it.
    const other = await runShien(['container', 'rmi', '--host', blade.hostAlias, '--json', 'lapimg'], {home: blade.otherLaptopHome})
    expect(other.exitCode).toBe(6)
    expect(other.json.error.code).toBe('NO_SUCH_IMAGE')

    const removed = await runShien(['container', 'rmi', '--host', blade.hostAlias, '--json', 'lapimg'], {home: blade.laptopHome})
    expect(removed.exitCode, removed.stderr).toBe(0)
    expect((await podman('image', 'exists', `${blade.account}-lapimg:latest`)).exitCode).toBe(1)
  }, 300_000)
})
