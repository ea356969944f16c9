/**
 * A blade step whose laptop goes: harden run over a real sshd of the test's own, its session
 * killed while libguestfs boots the appliance. The step (the same stdin watch, cleanup and
 * harden as `shien blade harden`) stops with its guestfish and qemu within seconds, removes the
 * staged image and its record, and leaves the slot's installed image as it was; the laptop's
 * side reads the channel closed without an exit status as CONNECTION_LOST, not a blade fault.
 */
import {createHash} from 'node:crypto'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {parseReply} from '../../../src/client/blade-client.js'
import {isShienError} from '../../../src/errors.js'
import {remoteExec} from '../../../src/transport/remote-exec.js'
import {startOwnSshd, type OwnSshd} from '../../support/own-sshd.js'
import {until} from '../../support/waiting.js'

const REPO_ROOT = join(import.meta.dirname, '../../..')
// The blade's fixed appliance when this machine has one (a harden boots it, read-only); else libguestfs' own.
const APPLIANCE = ['/var/lib/shien-blade/appliance', '/var/lib/shien/appliance'].find((dir) => existsSync(join(dir, 'kernel')))
let dir: string
let step: string
let sshd: OwnSshd

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'shien-laptop-gone-'))
  // Inside the repository: what it bundles finds shien's package.json above it.
  step = join(REPO_ROOT, 'node_modules', `.harden-step-${process.pid}.mjs`)
  await execa(join(REPO_ROOT, 'node_modules/.bin/rolldown'), ['test/support/harden-step.ts', '--platform', 'node', '--format', 'esm', '--inlineDynamicImports', '--file', step], {cwd: REPO_ROOT})
  sshd = await startOwnSshd()
}, 120_000)

afterAll(async () => {
  await sshd?.stop()
  if (dir) rmSync(dir, {recursive: true, force: true})
  if (step) rmSync(step, {force: true})
})

/** Every process under `pid` (not `pid` itself), from ps. */
async function descendants(pid: number): Promise<number[]> {
  const {stdout} = await execa('ps', ['-e', '-o', 'pid=,ppid='])
  const pairs = stdout.trim().split('\n').map((l) => l.trim().split(/\s+/).map(Number))
  const found: number[] = []
  for (let frontier = [pid]; frontier.length > 0;) {
    const next = pairs.filter(([, ppid]) => frontier.includes(ppid)).map(([p]) => p)
    found.push(...next)
    frontier = next
  }
  return found
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex')

describe('a blade step whose laptop\'s session is killed', () => {
  it('stops with its appliance within seconds, removes the staged image and record, and leaves the slot as it was', async () => {
    const storage = join(dir, 'storage')
    const images = join(storage, 'users', 'e195701', 'images')
    mkdirSync(images, {recursive: true})
    const installed = join(images, '01.qcow2')
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', installed, '16M'])
    const before = sha256(installed)
    const staged = join(images, '.01.new.qcow2')
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', staged, '64M'])
    writeFileSync(join(images, '.01.new.json'), '{"slot":"01"}\n')
    const key = readFileSync(`${sshd.clientKey}.pub`, 'utf8').trim()

    const client = await sshd.login()
    let pid = 0
    const running = remoteExec(client, ['node', step, storage, 'e195701', '01', key, ...(APPLIANCE ? [APPLIANCE] : [])], {
      onStderrLine: (line) => {
        const m = /"pid (\d+)"/.exec(line)
        if (m) pid = Number(m[1])
      },
    })
    await until('the step starts', () => pid > 0, 30_000)
    // The appliance is booting (qemu under guestfish) when the session goes.
    await until('qemu runs under guestfish', async () => {
      const tree = await descendants(pid)
      const {stdout} = await execa('ps', ['-o', 'comm=', '-p', tree.join(',') || '0'], {reject: false})
      return /qemu/.test(String(stdout))
    }, 60_000)
    const tree = await descendants(pid)
    await sshd.killSessions()

    const result = await running
    client.end()
    const error = (() => {
      try {
        return parseReply(result, {what: 'shien blade harden', command: 'shien'})
      } catch (e) {
        return e
      }
    })()
    expect(isShienError(error) && error.code).toBe('CONNECTION_LOST')
    expect((error as Error).message).toBe('The connection to the blade was lost during shien blade harden: run the same command to resume.')
    expect((error as {exitCode: number}).exitCode).toBe(4)

    // Left alone, the appliance would boot on and harden fail well after this (about 15 s under TCG).
    await until('the step and everything it started are gone', () => [pid, ...tree].every((p) => !alive(p)), 10_000)
    expect(existsSync(staged)).toBe(false)
    expect(existsSync(join(images, '.01.new.json'))).toBe(false)
    expect(existsSync(`${staged}.part`)).toBe(false)
    expect(sha256(installed)).toBe(before)
  }, 180_000)
})
