import {mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {ensureLocalBlade, type LocalBlade} from '../support/local-blade.js'
import {ensureTestImage, podman, PODMAN_SETTINGS, removeContainers, TEST_IMAGE} from '../support/podman.js'
import {ensureUser} from '../support/system.js'

// The installed /usr/local/bin/ie-docker through the local blade's sudo rule, on the real podman:
// an admin acting on a student's containers with --account, and images that are a student's own.
// Other test files use the same blade and students, so everything made here is named
// `<account>-sudo...`, and only those things are compared before and after a refusal.
const MARK = 'sudo'
/** In the sudo rule's group (to reach ie-docker) and the config's admin group. */
const ADMIN = 'shien-dsa'
const IE_DOCKER = '/usr/local/bin/ie-docker'

interface Reply {
  code: number
  body: any
}

/** ie-docker --json as `account` runs it: `sudo -n ie-docker`, as that user, through the sudo rule. */
async function ieDocker(account: string, ...argv: string[]): Promise<Reply> {
  const r = await execa('sudo', ['-u', account, '-H', '--', 'sudo', '-n', IE_DOCKER, '--json', ...argv], {reject: false})
  try {
    return {code: r.exitCode ?? -1, body: JSON.parse(r.stdout)}
  } catch {
    throw new Error(`ie-docker ${argv.join(' ')} as ${account} printed no JSON (exit ${r.exitCode}): ${r.stderr}`)
  }
}

describe('ie-docker through the sudo rule: an admin\'s --account, and students\' own images', () => {
  let blade: LocalBlade
  let student: string
  let other: string
  let proxyFile: string

  const ours = (name: string) => [student, other].some((a) => name.replace(/^localhost\//, '').startsWith(`${a}-${MARK}`))
  const imageRef = (account: string, name: string) => `localhost/${account}-${MARK}${name}:latest`

  /**
   * The engine as far as these tests are concerned: their containers (with state and image),
   * their images and the shared one (with ids), and the pool ports and proxy entries of their
   * containers.
   */
  async function engineState() {
    const lines = (text: string) => text.split('\n').filter((l) => l.trim() !== '')
    // A podman that fails here must not pass for an engine where nothing changed.
    const ask = async (...args: string[]) => {
      const r = await podman(...args)
      if (r.exitCode !== 0) throw new Error(`podman ${args.join(' ')} failed: ${r.stderr}`)
      return r.stdout
    }
    const listed = JSON.parse((await ask('ps', '-a', '--format', 'json')) || '[]') as {Names: string[]; State: string; ImageID: string}[]
    const containers = listed.map((c) => `${c.Names.join(',')} ${c.State} ${c.ImageID}`).filter(ours).sort()
    const images = lines(await ask('images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'))
      .filter((l) => ours(l) || l.startsWith(`${TEST_IMAGE} `))
      .sort()
    const poolDir = join(blade.storageRoot, 'ports', 'container')
    const ports: string[] = []
    for (const port of (await readdir(poolDir).catch(() => [] as string[])).filter((f) => /^\d+$/.test(f))) {
      const holder = await readFile(join(poolDir, port), 'utf8').catch(() => '')
      if (ours(holder)) ports.push(`${port} ${holder.trim()}`)
    }
    const proxy = lines(await readFile(proxyFile, 'utf8').catch(() => '')).filter((l) => l.includes(`-${MARK}`))
    return {containers, images, ports: ports.sort(), proxy}
  }

  /** Runs a command that must be refused with `code` and exit status `exit`, and checks the engine did not change. */
  async function refused(account: string, argv: string[], code: string, exit = 6): Promise<string> {
    const before = await engineState()
    const r = await ieDocker(account, ...argv)
    expect(r.body.error?.code, JSON.stringify(r.body)).toBe(code)
    expect(r.code).toBe(exit)
    expect(await engineState()).toEqual(before)
    return r.body.error.message as string
  }

  /** An image made outside ie-docker (as an admin might): `podman build` with the owner label `label`. */
  async function makeImage(ref: string, label: string): Promise<void> {
    const dir = await mkdtemp(join(tmpdir(), 'shien-sudo-image-'))
    try {
      await writeFile(join(dir, 'Containerfile'), `FROM ${TEST_IMAGE}\nRUN echo made-for-${label} > /www/owner.txt\n`)
      const made = await podman('build', '--pull=never', ...PODMAN_SETTINGS.buildArgs, '--label', `shien.account=${label}`, '-t', ref, dir)
      expect(made.exitCode, made.stderr).toBe(0)
    } finally {
      await rm(dir, {recursive: true, force: true})
    }
  }

  async function cleanUp() {
    for (const a of [student, other]) await removeContainers(`${a}-${MARK}`)
    const images = (await podman('images', '--format', '{{.Repository}}:{{.Tag}}')).stdout.split('\n').filter(ours)
    if (images.length > 0) await podman('rmi', '--force', ...images)
  }

  const status = async (container: string) => (await podman('inspect', '--format', '{{.State.Status}}', container)).stdout.trim()

  beforeAll(async () => {
    blade = await ensureLocalBlade()
    student = blade.account
    other = blade.otherAccount
    await ensureUser(ADMIN, [blade.usersGroup, blade.adminGroup])
    proxyFile = JSON.parse(await readFile(blade.configFile, 'utf8')).docker.proxy.includeFile
    await ensureTestImage()
    await cleanUp()
  }, 900_000)

  afterAll(async () => {
    if (blade !== undefined) await cleanUp()
  })

  it("lets an admin list, stop and remove a student's container with --account, and no student", async () => {
    const name = `${MARK}adm`
    const container = `${student}-${name}`
    const ran = await ieDocker(student, 'run', '-d', '--name', name, 'shien-test-busybox')
    expect(ran.code, JSON.stringify(ran.body)).toBe(0)
    const port = ran.body.ports[0].host as number

    // The other student names the account: refused, whatever the command.
    for (const argv of [['ps'], ['images'], ['stop', name], ['start', name], ['rm', '-f', name], ['rm', '-f', container]]) {
      const message = await refused(other, ['--account', student, ...argv], 'NOT_ADMIN')
      expect(message).toBe(`Only admins may act on another account's containers; ${other} is a student.`)
    }
    // Naming their own account with --account gives nothing more than without it.
    await refused(other, ['--account', other, 'stop', container], 'BAD_NAME', 2)
    await refused(other, ['--account', other, 'stop', name], 'NO_SUCH_CONTAINER')
    expect(await status(container)).toBe('running')

    const listed = await ieDocker(ADMIN, '--account', student, 'ps')
    expect(listed.code).toBe(0)
    expect(listed.body.containers).toContainEqual(expect.objectContaining({name, container, ports: [expect.objectContaining({host: port})]}))
    // Without --account the admin sees their own containers, not the student's.
    const own = await ieDocker(ADMIN, 'ps')
    expect(own.code).toBe(0)
    expect(own.body.containers.map((c: {container: string}) => c.container)).not.toContain(container)
    // Nor can the admin reach it without --account: the full name is not a name, the short one not theirs.
    await refused(ADMIN, ['stop', container], 'BAD_NAME', 2)
    await refused(ADMIN, ['stop', name], 'NO_SUCH_CONTAINER')

    expect((await ieDocker(ADMIN, '--account', student, 'stop', name)).body).toMatchObject({container, action: 'stopped'})
    expect(await status(container)).toBe('exited')
    const removed = await ieDocker(ADMIN, '--account', student, 'rm', '-f', name)
    expect(removed.body).toMatchObject({container, action: 'removed', freedPorts: [port]})
    expect((await podman('container', 'exists', container)).exitCode).toBe(1)
    expect((await engineState()).ports).toEqual([])

    await refused(ADMIN, ['--account', 'no-such-account', 'ps'], 'NO_SUCH_ACCOUNT')
  }, 120_000)

  it('shows, runs and removes a student\'s own image for them alone', async () => {
    const ref = imageRef(student, 'img')
    const image = `${student}-${MARK}img:latest`
    const short = `${MARK}img`
    await makeImage(ref, student)

    const mine = await ieDocker(student, 'images')
    expect(mine.code).toBe(0)
    expect(mine.body.images).toContainEqual(expect.objectContaining({name: `${short}:latest`, image, shared: false}))
    expect(mine.body.images).toContainEqual(expect.objectContaining({name: 'shien-test-busybox:latest', shared: true}))
    const theirs = await ieDocker(other, 'images')
    expect(theirs.code).toBe(0)
    expect(JSON.stringify(theirs.body.images)).not.toContain(short)
    // An admin sees it as the student's with --account.
    expect((await ieDocker(ADMIN, '--account', student, 'images')).body.images).toContainEqual(expect.objectContaining({name: `${short}:latest`, shared: false}))

    // The other student can neither run it nor remove it, by any of its names.
    for (const raw of [short, `${student}-${MARK}img`, image, ref]) await refused(other, ['run', '-d', '--name', `${MARK}x`, raw], 'IMAGE_NOT_ALLOWED')
    await refused(other, ['rmi', short], 'NO_SUCH_IMAGE')
    // Full names hold a hyphen, which no image name has.
    for (const raw of [`${student}-${MARK}img`, image]) await refused(other, ['rmi', raw], 'BAD_NAME', 2)
    await refused(other, ['rmi', ref], 'BAD_NAME', 2)
    expect((await podman('image', 'exists', ref)).exitCode).toBe(0)

    // The owner runs it: the container is made from that image.
    const ran = await ieDocker(student, 'run', '-d', '--name', `${MARK}own`, short)
    expect(ran.code, JSON.stringify(ran.body)).toBe(0)
    const made = await podman('inspect', '--format', '{{.ImageName}} {{.State.Status}}', `${student}-${MARK}own`)
    expect(made.stdout.trim()).toBe(`${ref} running`)
    expect((await ieDocker(student, 'rm', '-f', `${MARK}own`)).code).toBe(0)

    const removed = await ieDocker(student, 'rmi', short)
    expect(removed.code, JSON.stringify(removed.body)).toBe(0)
    expect(removed.body).toMatchObject({name: `${short}:latest`, image, action: 'removed'})
    expect((await podman('image', 'exists', ref)).exitCode).toBe(1)
    expect(JSON.stringify((await ieDocker(student, 'images')).body.images)).not.toContain(short)
    await refused(student, ['rmi', short], 'NO_SUCH_IMAGE')
  }, 180_000)

  it("does not take an image with a student's name prefix but another account's label as theirs", async () => {
    // Under the student's prefix, labelled for the other student: neither account's.
    const ref = imageRef(student, 'fake')
    const short = `${MARK}fake`
    await makeImage(ref, other)

    for (const account of [student, other]) {
      const r = await ieDocker(account, 'images')
      expect(r.code).toBe(0)
      expect(JSON.stringify(r.body.images)).not.toContain(short)
    }
    await refused(student, ['run', '-d', '--name', `${MARK}x`, short], 'IMAGE_NOT_ALLOWED')
    await refused(student, ['rmi', short], 'NO_SUCH_IMAGE')
    await refused(other, ['run', '-d', '--name', `${MARK}x`, `${student}-${short}`], 'IMAGE_NOT_ALLOWED')
    await refused(other, ['rmi', `${student}-${short}`], 'BAD_NAME', 2)
    expect((await podman('image', 'exists', ref)).exitCode).toBe(0)
  }, 120_000)

  it('never removes a shared image, for a student or an admin', async () => {
    for (const raw of ['shien-test-busybox', 'shien-test-busybox:latest']) {
      // Not an image name of anyone's (it has a hyphen), so never one to remove.
      await refused(student, ['rmi', raw], 'BAD_NAME', 2)
      await refused(ADMIN, ['--account', student, 'rmi', raw], 'BAD_NAME', 2)
    }
    await refused(student, ['rmi', TEST_IMAGE], 'BAD_NAME', 2)
    expect((await podman('image', 'exists', TEST_IMAGE)).exitCode).toBe(0)
    expect((await ieDocker(student, 'images')).body.images).toContainEqual(expect.objectContaining({name: 'shien-test-busybox:latest', shared: true}))
  })
})
