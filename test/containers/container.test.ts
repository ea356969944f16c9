import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {execa} from 'execa'

import {runShien} from '../support/cli.js'
import {ensureLocalBlade, type LocalBlade} from '../support/local-blade.js'
import {ensureTestImage, podman, removeContainers} from '../support/podman.js'

// End to end on the local blade: the laptop's `shien container ...` over SSH, the sudo rule,
// the installed /usr/local/bin/ie-docker as root, and the real podman behind it.
let blade: LocalBlade
// The shared flags go right after the command: after run's `--`, everything goes to ie-docker.
const container = ([command, ...args]: string[], home = blade.laptopHome) =>
  runShien(['container', command, '--host', blade.hostAlias, '--json', ...args], {home})
const ieDockerAs = (account: string, args: string[]) =>
  execa('sudo', ['-u', account, '-H', '--', 'sudo', '-n', '/usr/local/bin/ie-docker', '--json', ...args], {reject: false})

describe('shien container / ie-docker through sudo on the local blade', () => {
  beforeAll(async () => {
    blade = await ensureLocalBlade()
    await ensureTestImage()
    for (const a of [blade.account, blade.otherAccount]) await removeContainers(`${a}-`)
  }, 900_000)

  afterAll(async () => {
    for (const a of [blade.account, blade.otherAccount]) await removeContainers(`${a}-`)
  })

  it('runs a container from the laptop whose pool port answers HTTP, and only its owner can stop it', async () => {
    const ran = await container(['run', '--', '-d', '--name', 'web', 'shien-test-busybox'])
    expect(ran.exitCode, ran.stderr).toBe(0)
    const result = JSON.parse(ran.stdout)
    expect(result.container).toBe(`${blade.account}-web`)
    const port = result.ports[0].host as number
    expect(port).toBeGreaterThanOrEqual(24000)
    let body = ''
    for (let i = 0; i < 50 && body === ''; i++) {
      body = await fetch(`http://127.0.0.1:${port}/`).then((r) => r.text()).catch(() => '')
      if (body === '') await new Promise((r) => setTimeout(r, 100))
    }
    expect(body).toContain('hello from shien')

    // The other student, through the same sudo rule, cannot touch it, even by full name.
    // The full name is not a name (names have no hyphen); the short one is not theirs.
    const other = await ieDockerAs(blade.otherAccount, ['stop', `${blade.account}-web`])
    expect(other.exitCode).toBe(2)
    expect(JSON.parse(other.stdout).error.code).toBe('BAD_NAME')
    const short = await ieDockerAs(blade.otherAccount, ['stop', 'web'])
    expect(short.exitCode).toBe(6)
    expect(JSON.parse(short.stdout).error.code).toBe('NO_SUCH_CONTAINER')
    expect((await podman('inspect', '--format', '{{.State.Status}}', `${blade.account}-web`)).stdout.trim()).toBe('running')

    const ps = JSON.parse((await container(['ps'])).stdout)
    expect(ps.containers).toMatchObject([{name: 'web', ports: [{host: port}]}])
    const removed = await container(['rm', '--force', 'web'])
    expect(JSON.parse(removed.stdout)).toMatchObject({action: 'removed', freedPorts: [port]})
    expect((await podman('container', 'exists', `${blade.account}-web`)).exitCode).toBe(1)
  }, 120_000)

  it('gives a refusal from the blade with its code and exit status on the laptop', async () => {
    const r = await container(['run', '--', '-d', '--name', 'x', '--privileged', 'shien-test-busybox'])
    expect(r.exitCode).toBe(6)
    expect(JSON.parse(r.stdout).error.code).toBe('FLAG_REFUSED')
    expect((await podman('container', 'exists', `${blade.account}-x`)).exitCode).toBe(1)
  })

  it('ignores a SUDO_UID the student sets: the caller is who sudo says', async () => {
    const r = await execa('sudo', ['-u', blade.account, '-H', '--', 'env', `SUDO_UID=0`, 'sudo', '-n', '/usr/local/bin/ie-docker', '--json', 'ps'], {reject: false})
    expect(r.exitCode).toBe(0)
    expect(JSON.parse(r.stdout).containers).toEqual([])
  })
})
