import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {execa} from 'execa'

import {runShien, SHIEN_BIN, startShien} from '../support/cli.js'
import {ensureLocalBlade, type LocalBlade} from '../support/local-blade.js'
import {ensureTestImage, podman, removeContainers} from '../support/podman.js'

// `shien container run` typed as for docker, `logs` and `exec`, end to end on the local blade:
// the laptop over SSH, the sudo rule, the installed ie-docker as root, the real podman.
let blade: LocalBlade
const shien = (args: string[]) => runShien(['container', ...args], {home: blade.laptopHome})
const ieDockerAs = (account: string, args: string[]) =>
  execa('sudo', ['-u', account, '-H', '--', 'sudo', '-n', '/usr/local/bin/ie-docker', '--json', ...args], {reject: false})
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** The blade's `podman logs --follow` processes for this container. */
async function followers(container: string): Promise<string[]> {
  const r = await execa('pgrep', ['-f', `logs --follow ${container}`], {reject: false})
  return r.stdout.split('\n').filter(Boolean)
}

describe('shien container run, logs and exec as docker users type them', () => {
  beforeAll(async () => {
    blade = await ensureLocalBlade()
    await ensureTestImage()
    for (const a of [blade.account, blade.otherAccount]) await removeContainers(`${a}-`)
    // Typed as for docker, with no `--`, and shien's own flags among docker's.
    const script = 'echo to-stdout; echo to-stderr >&2; i=0; while true; do i=$((i+1)); echo tick $i; sleep 1; done'
    const ran = await shien(['run', '-d', '--host', blade.hostAlias, '--name', 'talk', '--json', '-e', 'GREETING=hi there', 'shien-test-busybox', 'sh', '-c', script])
    expect(ran.exitCode, ran.stderr).toBe(0)
    expect(ran.json).toMatchObject({name: 'talk', container: `${blade.account}-talk`})
  }, 900_000)

  afterAll(async () => {
    for (const a of [blade.account, blade.otherAccount]) await removeContainers(`${a}-`)
  })

  it('names a flag ie-docker refuses, or one nobody knows, before anything is made', async () => {
    const refused = await shien(['run', '-d', '--host', blade.hostAlias, '--name', 'bad', '--privileged', 'shien-test-busybox'])
    expect(refused.exitCode).toBe(6)
    expect(refused.stderr).toMatch(/^Error \(FLAG_REFUSED\): --privileged is not allowed: /)
    const unknown = await shien(['run', '-d', '--host', blade.hostAlias, '--name', 'bad', '--restart', 'always', 'shien-test-busybox', '--json'])
    expect(unknown.exitCode).toBe(2)
    expect(unknown.json.error).toMatchObject({code: 'USAGE', message: 'Nonexistent flag: --restart'})
    expect((await podman('container', 'exists', `${blade.account}-bad`)).exitCode).toBe(1)
  })

  it("shows a container's output, both streams, and under --json as one string", async () => {
    const logs = await shien(['logs', '--host', blade.hostAlias, 'talk'])
    expect(logs.exitCode, logs.stderr).toBe(0)
    expect(logs.stdout).toMatch(/^to-stdout\ntick 1\n/)
    expect(logs.stderr).toContain('to-stderr')
    const json = await shien(['logs', '--host', blade.hostAlias, '--json', '-n', '1', 'talk'])
    expect(json.exitCode, json.stderr).toBe(0)
    expect(json.json).toMatchObject({name: 'talk', container: `${blade.account}-talk`, output: expect.stringMatching(/^tick \d+\n$/)})
    const both = await shien(['logs', '--host', blade.hostAlias, '--json', '-f', 'talk'])
    expect(both.exitCode).toBe(2)
    expect(both.json.error.message).toMatch(/--follow cannot go with --json/)
  })

  it('follows the output, and the blade stops following when the laptop goes away, even killed', async () => {
    const container = `${blade.account}-talk`
    const follow = startShien(['container', 'logs', '-f', '--host', blade.hostAlias, 'talk'], {home: blade.laptopHome})
    let seen = ''
    follow.stdout?.on('data', (chunk: Buffer) => (seen += chunk))
    for (let i = 0; i < 100 && (seen.match(/tick/g) ?? []).length < 3; i++) await sleep(100)
    const ticks = [...seen.matchAll(/tick (\d+)/g)].map((m) => Number(m[1]))
    expect(ticks.length).toBeGreaterThanOrEqual(3)
    // New lines keep coming in order: it is following, not replaying.
    expect(ticks.at(-1)! - ticks.at(-2)!).toBe(1)
    expect(await followers(container)).not.toEqual([])
    follow.kill('SIGKILL')
    await follow
    let left = await followers(container)
    for (let i = 0; i < 50 && left.length > 0; i++) {
      await sleep(200)
      left = await followers(container)
    }
    expect(left).toEqual([])
    // Ctrl-C is how -f ends: exit 0, not an error.
    const again = startShien(['container', 'logs', '-f', '--host', blade.hostAlias, 'talk'], {home: blade.laptopHome})
    let more = ''
    again.stdout?.on('data', (chunk: Buffer) => (more += chunk))
    for (let i = 0; i < 100 && !more.includes('tick'); i++) await sleep(100)
    again.kill('SIGINT')
    const ended = await again
    expect(ended.exitCode, String(ended.stderr)).toBe(0)
  }, 60_000)

  it('runs a command in the container as the container runs: uid 0 inside, the student outside, with its exit code', async () => {
    const id = await shien(['exec', '--host', blade.hostAlias, 'talk', 'cat', '/proc/self/uid_map'])
    expect(id.exitCode, id.stderr).toBe(0)
    const uid = (await execa('id', ['-u', blade.account])).stdout.trim()
    expect(id.stdout.trim().split(/\s+/)).toEqual(['0', uid, '1'])
    const env = await shien(['exec', '-e', 'X=1', '-w', '/www', '--host', blade.hostAlias, 'talk', 'sh', '-c', 'echo "$X $GREETING $(pwd)"; exit 7'])
    expect(env.exitCode).toBe(7)
    expect(env.stdout).toBe('1 hi there /www')
  })

  it('sends stdin with -i, and none without it', async () => {
    const env = {HOME: blade.laptopHome, XDG_CONFIG_HOME: `${blade.laptopHome}/.config`, SSH_AUTH_SOCK: ''}
    const piped = await execa('node', [SHIEN_BIN, 'container', 'exec', '-i', '--host', blade.hostAlias, 'talk', 'sh', '-c', 'cat | busybox wc -c'], {cwd: blade.laptopHome, env, input: 'x'.repeat(100_000), reject: false})
    expect(piped.exitCode, piped.stderr).toBe(0)
    expect(piped.stdout.trim()).toBe('100000')
    const closed = await execa('node', [SHIEN_BIN, 'container', 'exec', '--host', blade.hostAlias, 'talk', 'sh', '-c', 'cat | busybox wc -c'], {cwd: blade.laptopHome, env, input: 'ignored', reject: false})
    expect(closed.stdout.trim()).toBe('0')
  })

  it('refuses --privileged, --user and --env-file by name, and another student everything, through the real sudo rule', async () => {
    const laptop = await shien(['exec', '--env-file', '/etc/shadow', '--host', blade.hostAlias, 'talk', 'env'])
    expect(laptop.exitCode).toBe(6)
    expect(laptop.stderr).toMatch(/^Error \(FLAG_REFUSED\): --env-file is not allowed: the file would be read on the blade with root privileges/)
    for (const flag of [['--privileged'], ['--user', '0'], ['--env-file', '/etc/shadow']]) {
      const onBlade = await ieDockerAs(blade.account, ['exec', ...flag, 'talk', 'id'])
      expect(onBlade.exitCode, flag[0]).toBe(6)
      expect(JSON.parse(onBlade.stdout).error.code).toBe('FLAG_REFUSED')
    }
    for (const args of [['exec', 'talk', 'id'], ['logs', 'talk']]) {
      const other = await ieDockerAs(blade.otherAccount, args)
      expect(other.exitCode).toBe(6)
      expect(JSON.parse(other.stdout).error.code).toBe('NO_SUCH_CONTAINER')
    }
    const full = await ieDockerAs(blade.otherAccount, ['exec', `${blade.account}-talk`, 'id'])
    expect(JSON.parse(full.stdout).error.code).toBe('BAD_NAME')
  })

  it('refuses exec in a container that is not running', async () => {
    expect((await shien(['stop', '--host', blade.hostAlias, 'talk'])).exitCode).toBe(0)
    const r = await shien(['exec', '--host', blade.hostAlias, 'talk', 'id'])
    expect(r.exitCode).toBe(6)
    expect(r.stderr).toMatch(/^Error \(NOT_RUNNING\): Container "talk" is not running/)
  }, 60_000)
})
