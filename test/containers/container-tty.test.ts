import {readFile} from 'node:fs/promises'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {REPO_ROOT, SHIEN_BIN, runShien} from '../support/cli.js'
import {ensureLocalBlade, type LocalBlade} from '../support/local-blade.js'
import {cgroupMemoryLimit, ensureTestImage, podman} from '../support/podman.js'

// Containers on a real terminal: tmux gives ie-docker (through sudo, on the blade) and shien
// (over SSH, from the laptop) the terminal a student would type in.
const TMUX = ['-L', `shien-ctty-${process.pid}`, '-f', '/dev/null']
/** Names of this run's own, so a cleanup cannot touch another test's containers. */
const tag = `tty${process.pid.toString(36)}`
const NAMES = {blade: `${tag}blade`, shell: `${tag}shell`, laptop: `${tag}laptop`, attach: `${tag}attach`, refused: `${tag}refused`}
const IE_DOCKER = ['sudo', '-n', '/usr/local/bin/ie-docker']

let blade: LocalBlade

const tmux = (...args: string[]) => execa('tmux', [...TMUX, ...args], {reject: false})
const ieDockerAs = (account: string, args: string[]) => execa('sudo', ['-u', account, '-H', '--', ...IE_DOCKER, '--json', ...args], {reject: false})
const inspect = async (container: string, format: string) => (await podman('container', 'inspect', '--format', format, container)).stdout.trim()
const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`

/** Starts `argv` in a tmux session of its own; the shell then prints EXIT=<code> and waits. */
async function open(session: string, argv: string[]): Promise<void> {
  const command = `cd ${REPO_ROOT} && ${argv.map(quote).join(' ')}; echo "EXIT=$?"; sleep 600`
  const r = await tmux('new-session', '-d', '-s', session, '-x', '150', '-y', '40', command)
  expect(r.exitCode, r.stderr).toBe(0)
}

/** A student at the laptop: shien with the laptop home the local blade gives them. */
const shienOn = (home: string, args: string[]) => ['env', `HOME=${home}`, 'SSH_AUTH_SOCK=', 'node', SHIEN_BIN, ...args]

async function waitFor(session: string, pattern: RegExp, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const text = (await tmux('capture-pane', '-p', '-t', session)).stdout
    if (pattern.test(text)) return text
    if (Date.now() >= deadline) throw new Error(`tmux session ${session} never showed ${pattern}; it shows:\n${text}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

/**
 * Types `echo` of a sum into the container's shell until the sum comes back: the answer (not
 * the typed text) proves the input reached the container and its output came back. Typed
 * again every few seconds, as an attach gives no sign of when it is connected.
 */
async function typeUntilAnswered(session: string, word: string, timeoutMs = 30_000): Promise<void> {
  const answer = new RegExp(`^${word}-42\\s*$`, 'm')
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; ) {
    await tmux('send-keys', '-t', session, '-l', `echo ${word}-$((6*7))`)
    await tmux('send-keys', '-t', session, 'Enter')
    try {
      await waitFor(session, answer, 3000)
      return
    } catch {
      // Not connected yet: type it again.
    }
  }
  await waitFor(session, answer, 0)
}

/** The exit status the session's shell printed after the command ended. */
async function exitStatus(session: string): Promise<number> {
  return Number(/EXIT=(\d+)/.exec(await waitFor(session, /EXIT=\d+/))![1])
}

/** The container's detach keys, typed one at a time as a person would (podman needs them apart). */
async function detach(session: string): Promise<void> {
  await tmux('send-keys', '-t', session, 'C-p')
  await new Promise((r) => setTimeout(r, 300))
  await tmux('send-keys', '-t', session, 'C-q')
}

async function removeOurs(): Promise<void> {
  for (const account of [blade.account, blade.otherAccount]) {
    for (const name of Object.values(NAMES)) {
      if ((await podman('container', 'exists', `${account}-${name}`)).exitCode === 0) await ieDockerAs(account, ['rm', '--force', name])
    }
  }
}

beforeAll(async () => {
  blade = await ensureLocalBlade()
  await ensureTestImage()
  await removeOurs()
}, 900_000)

afterAll(async () => {
  await tmux('kill-server')
  if (blade) await removeOurs()
})

describe('ie-docker on the blade, as a student through sudo, on a terminal', () => {
  it('runs -it: typed commands reach the shell, exit 3 ends it with status 3, and the container is capped and the student\'s', async () => {
    const container = `${blade.account}-${NAMES.blade}`
    const config = JSON.parse(await readFile(blade.configFile, 'utf8')) as {docker: {limits?: {default?: {memoryMiB?: number}}}}
    const capMiB = config.docker.limits?.default?.memoryMiB ?? 512
    await open('run', ['sudo', '-u', blade.account, '-H', '--', ...IE_DOCKER, 'run', '-it', '--name', NAMES.blade, 'shien-test-busybox', '/bin/sh'])
    await typeUntilAnswered('run', 'blade')
    expect(await inspect(container, '{{index .Config.Labels "shien.account"}} {{.State.Status}}')).toBe(`${blade.account} running`)
    expect(await cgroupMemoryLimit(container)).toBe(capMiB * 1024 ** 2)
    await tmux('send-keys', '-t', 'run', '-l', 'exit 3')
    await tmux('send-keys', '-t', 'run', 'Enter')
    expect(await exitStatus('run')).toBe(3)
    expect(await inspect(container, '{{.State.Status}} {{.State.ExitCode}}')).toBe('exited 3')
  })

  it('attaches to a shell started with run -d -it: input reaches it, output comes back, and its exit code is the session\'s', async () => {
    const started = await ieDockerAs(blade.account, ['run', '-d', '-it', '--name', NAMES.shell, 'shien-test-busybox', '/bin/sh'])
    expect(started.exitCode, started.stdout + started.stderr).toBe(0)
    await open('attach', ['sudo', '-u', blade.account, '-H', '--', ...IE_DOCKER, 'attach', NAMES.shell])
    await typeUntilAnswered('attach', 'attached')
    await tmux('send-keys', '-t', 'attach', '-l', 'exit 4')
    await tmux('send-keys', '-t', 'attach', 'Enter')
    expect(await exitStatus('attach')).toBe(4)
    expect(await inspect(`${blade.account}-${NAMES.shell}`, '{{.State.Status}} {{.State.ExitCode}}')).toBe('exited 4')
  })
})

describe('shien container from the laptop, through an SSH terminal', () => {
  it('runs -it: a shell in the capped container, and shien exits with its exit code', async () => {
    const container = `${blade.account}-${NAMES.laptop}`
    await open('laptop-run', shienOn(blade.laptopHome, ['container', 'run', '-it', '-m', '80m', '--host', blade.hostAlias, '--name', NAMES.laptop, 'shien-test-busybox', '/bin/sh']))
    await typeUntilAnswered('laptop-run', 'laptop')
    expect(await inspect(container, '{{index .Config.Labels "shien.account"}} {{.State.Status}}')).toBe(`${blade.account} running`)
    expect(await cgroupMemoryLimit(container)).toBe(80 * 1024 ** 2)
    await tmux('send-keys', '-t', 'laptop-run', '-l', 'exit 3')
    await tmux('send-keys', '-t', 'laptop-run', 'Enter')
    expect(await exitStatus('laptop-run')).toBe(3)
    expect(await inspect(container, '{{.State.Status}} {{.State.ExitCode}}')).toBe('exited 3')
  })

  it('attaches to a running shell, leaves it running with Ctrl-P Ctrl-Q, execs a second shell beside it, and ends with its exit code', async () => {
    const container = `${blade.account}-${NAMES.attach}`
    const ran = await runShien(['container', 'run', '--host', blade.hostAlias, '--json', '--', '-dit', '--name', NAMES.attach, 'shien-test-busybox', '/bin/sh'], {home: blade.laptopHome})
    expect(ran.exitCode, ran.stderr).toBe(0)
    expect(ran.json.container).toBe(container)

    const attach = shienOn(blade.laptopHome, ['container', 'attach', '--host', blade.hostAlias, NAMES.attach])
    await open('laptop-attach', attach)
    await typeUntilAnswered('laptop-attach', 'first')
    await detach('laptop-attach')
    expect(await exitStatus('laptop-attach')).toBe(0)
    expect(await inspect(container, '{{.State.Status}}')).toBe('running')

    // exec -it: a second shell in the running container, on this terminal; its exit code is shien's.
    await open('laptop-exec', shienOn(blade.laptopHome, ['container', 'exec', '-it', '--host', blade.hostAlias, NAMES.attach, '/bin/sh']))
    await typeUntilAnswered('laptop-exec', 'exec')
    await tmux('send-keys', '-t', 'laptop-exec', '-l', 'exit 5')
    await tmux('send-keys', '-t', 'laptop-exec', 'Enter')
    expect(await exitStatus('laptop-exec')).toBe(5)
    expect(await inspect(container, '{{.State.Status}}')).toBe('running')

    await open('laptop-attach-again', attach)
    await typeUntilAnswered('laptop-attach-again', 'second')
    await tmux('send-keys', '-t', 'laptop-attach-again', '-l', 'exit 7')
    await tmux('send-keys', '-t', 'laptop-attach-again', 'Enter')
    expect(await exitStatus('laptop-attach-again')).toBe(7)
    expect(await inspect(container, '{{.State.Status}} {{.State.ExitCode}}')).toBe('exited 7')
  })

  it("refuses another student's attach, by short or full name or with --account, and leaves the container as it was", async () => {
    const container = `${blade.account}-${NAMES.refused}`
    const ran = await ieDockerAs(blade.account, ['run', '-d', '-it', '--name', NAMES.refused, 'shien-test-busybox', '/bin/sh'])
    expect(ran.exitCode, ran.stdout + ran.stderr).toBe(0)
    const before = await inspect(container, '{{.State.Status}} {{.State.Pid}} {{.State.StartedAt}}')
    expect(before).toMatch(/^running [1-9]/)
    await open('other-short', shienOn(blade.otherLaptopHome, ['container', 'attach', '--host', blade.hostAlias, NAMES.refused]))
    expect(await exitStatus('other-short')).toBe(6)
    expect(await waitFor('other-short', /NO_SUCH_CONTAINER/)).toContain(`You have no container "${NAMES.refused}"`)
    // The full name is not a container name at all: names have no hyphen.
    await open('other-full', shienOn(blade.otherLaptopHome, ['container', 'attach', '--host', blade.hostAlias, container]))
    expect(await exitStatus('other-full')).toBe(2)
    expect(await waitFor('other-full', /BAD_NAME/)).toContain(`"${container}" is not a container name`)
    // --account reaches ie-docker (before its command), which allows it to admins only.
    await open('other-account', shienOn(blade.otherLaptopHome, ['container', 'attach', '--host', blade.hostAlias, '--account', blade.account, NAMES.refused]))
    expect(await exitStatus('other-account')).toBe(6)
    expect(await waitFor('other-account', /NOT_ADMIN/)).toContain(`${blade.otherAccount} is a student`)
    expect(await inspect(container, '{{.State.Status}} {{.State.Pid}} {{.State.StartedAt}}')).toBe(before)
    // Its shell is still the owner's to use.
    await open('owner', shienOn(blade.laptopHome, ['container', 'attach', '--host', blade.hostAlias, NAMES.refused]))
    await typeUntilAnswered('owner', 'owner')
    await detach('owner')
    expect(await exitStatus('owner')).toBe(0)
  })

  it('refuses attach and run -it without a terminal, and run with neither -d nor -t, before anything is made', async () => {
    const shien = (args: string[]) => runShien(['container', ...args], {home: blade.laptopHome})
    const attach = await shien(['attach', '--host', blade.hostAlias, NAMES.refused])
    expect(attach.exitCode).toBe(2)
    expect(attach.stderr).toContain('Error (NOT_A_TERMINAL): container attach needs a terminal.')

    const name = `${tag}never`
    const run = await shien(['run', '--host', blade.hostAlias, '-it', '--name', name, 'shien-test-busybox', '/bin/sh'])
    expect(run.exitCode).toBe(2)
    expect(run.stderr).toContain('Error (NOT_A_TERMINAL): container run -t needs a terminal.')
    expect(run.stderr).toContain('shien container run -d --name NAME IMAGE')

    const neither = await shien(['run', '--host', blade.hostAlias, '--', '-i', '--name', name, 'shien-test-busybox', '/bin/sh'])
    expect(neither.exitCode).toBe(2)
    expect(neither.stderr).toMatch(/Error \(USAGE\): Over SSH, add -d .* or -it /)

    const json = await shien(['run', '--host', blade.hostAlias, '--json', '--', '-it', '--name', name, 'shien-test-busybox'])
    expect(json.exitCode).toBe(2)
    expect(json.json.error.code).toBe('USAGE')

    const exec = await shien(['exec', '-it', '--host', blade.hostAlias, NAMES.refused, '/bin/sh'])
    expect(exec.exitCode).toBe(2)
    expect(exec.stderr).toContain('Error (NOT_A_TERMINAL): container exec -t needs a terminal.')
    expect((await podman('container', 'exists', `${blade.account}-${name}`)).exitCode).toBe(1)
  })
})
