import {createHash, randomBytes} from 'node:crypto'
import {createReadStream, existsSync, mkdtempSync, readFileSync, rmSync, statSync} from 'node:fs'
import {chmod, mkdir, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {pipeline} from 'node:stream/promises'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {REPO_ROOT, runShien, startShien} from '../support/cli.js'
import {changeGuest, diskOf, repackBox, unpackBox} from '../support/derived-box.js'
import {ensureLocalBlade, type LocalBlade} from '../support/local-blade.js'
import {testBoxPath} from '../support/test-box.js'
import {clearSlot, definedDomains} from '../support/virsh.js'

/**
 * A delta push over the local blade: the test box is published as a course base, a student's
 * box is made from it by changing a few MiB of its disk, and `shien push --base` sends only the
 * blocks that differ; the VM then runs on a thin overlay of the base and lets the student in.
 * Before that, a push naming a version the blade lacks falls back to the whole box, and a delta
 * upload cut half way is resumed by the push that then succeeds. Those two pushes run in a
 * Vagrant project, as students push: the base comes from Vagrant's box_meta, and `vagrant
 * package` (a stand-in on PATH: VirtualBox does not run here) writes the derived box once.
 */

// Files run one at a time and each clears its slot after itself: this one shares 03 with push.test.ts.
const SLOT = '03'
const BASE = 'os101/debian12'
const VERSION = '2026.1.0'
const INSECURE = join(REPO_ROOT, 'test/fixtures/vagrant-insecure')
const NAME = 'delta'

let blade: LocalBlade
let work: string
let derived: string
let project: string
let bin: string
let basePath: string
let baseSha: string
let sshPort: number

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256')
  await pipeline(createReadStream(path), hash)
  return hash.digest('hex')
}

// Enough changed data for the delta's upload to be cut half way on loopback.
const DATA_BYTES = 48 * 2 ** 20

/** The test box with a changed disk: a 48 MiB file added and one removed, through libguestfs. */
async function deriveBox(box: string): Promise<string> {
  const unpacked = await unpackBox(box, join(work, 'box'))
  const disk = await diskOf(unpacked, join(work, 'disk.qcow2'))
  const data = join(work, 'data.bin')
  await writeFile(data, randomBytes(DATA_BYTES))
  await changeGuest(disk, [`upload ${data} /home/vagrant/data.bin`, 'rm-f /etc/motd'])
  return repackBox(unpacked, disk, join(work, 'student.box'))
}

/**
 * A project whose machine Vagrant made from the published base (box_meta as `vagrant up`
 * writes it), with a `vagrant` on PATH whose `package` writes the derived box and counts runs.
 */
async function vagrantProject(): Promise<string> {
  const dir = join(work, 'project')
  const data = join(dir, '.vagrant', 'machines', 'default', 'virtualbox')
  await mkdir(data, {recursive: true})
  await writeFile(join(dir, 'Vagrantfile'), `Vagrant.configure("2") do |config|\n  config.vm.box = "${BASE}"\nend\n`)
  await writeFile(join(data, 'box_meta'), JSON.stringify({name: BASE, version: VERSION, provider: 'virtualbox', directory: 'boxes/os101-VAGRANTSLASH-debian12/2026.1.0/virtualbox'}))
  bin = join(work, 'bin')
  await mkdir(bin)
  await writeFile(join(bin, 'vagrant'), `#!/bin/sh\necho "$*" >> "${work}/vagrant-runs"\n[ "$1" = package ] && cp "${derived}" "$3"\n`)
  await chmod(join(bin, 'vagrant'), 0o755)
  return dir
}

const vagrantRuns = () => (existsSync(join(work, 'vagrant-runs')) ? readFileSync(join(work, 'vagrant-runs'), 'utf8').split('\n').filter(Boolean) : [])

/** How the student runs it in the project: the box from `vagrant package`, the base from box_meta. */
const inProject = () => ({cwd: project, env: {PATH: `${bin}:${process.env.PATH}`}})

/**
 * Starts a push and stops it (with `signal`) at the first plain-output line after the one that
 * `after` matches that `when` matches; reports what it printed.
 */
async function cutPush(args: string[], after: RegExp, when: RegExp, signal: NodeJS.Signals, where: {cwd?: string; env?: Record<string, string>} = {}) {
  const child = startShien(['push', ...args, '--host', 'blade', '--slot', SLOT, '--name', NAME], {home: blade.laptopHome, ...where})
  let seen = false
  let cut = false
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      stderr += line + '\n'
      if (!seen) seen = after.test(line)
      else if (!cut && when.test(line)) {
        cut = true
        child.kill(signal)
      }
    }
  })
  const result = await child
  return {cut, exitCode: result.exitCode, stderr}
}

function sshArgs(key: string): string[] {
  return ['-i', key, '-p', String(sshPort), '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null', '-o', 'PubkeyAcceptedAlgorithms=+ssh-rsa', '-o', 'ConnectTimeout=10', 'vagrant@127.0.0.1']
}

beforeAll(async () => {
  blade = await ensureLocalBlade()
  work = mkdtempSync(join(tmpdir(), 'shien-delta-e2e-'))
  // An earlier run's VM on the base would make publishing it again (--force) refused.
  await clearSlot(blade.account, SLOT)
  const box = await testBoxPath()
  const boxes = join(blade.storageRoot, 'boxes')
  const published = await runShien(['box', 'publish', box, '--name', BASE, '--version', VERSION, '--to', boxes, '--force', '--json'], {home: work})
  expect(published.exitCode, published.stderr + published.stdout).toBe(0)
  basePath = join(boxes, BASE, VERSION, 'libvirt.qcow2')
  baseSha = await sha256(basePath)
  derived = await deriveBox(box)
  project = await vagrantProject()
}, 1_200_000)

afterAll(async () => {
  if (blade) await clearSlot(blade.account, SLOT)
  // A killed upload's files on the blade (the blade's side may outlive the cut for a moment).
  if (blade) for (const f of [`${NAME}.box.part`, `${NAME}.delta.part`]) rmSync(join(blade.storageRoot, 'users', blade.account, 'incoming', f), {force: true})
  if (work) rmSync(work, {recursive: true, force: true})
})

describe('shien push --base, end to end on the local blade', () => {
  const incoming = () => join(blade.storageRoot, 'users', blade.account, 'incoming')

  it('sends the whole box, saying why in one line, when the blade lacks the version', async () => {
    rmSync(join(incoming(), `${NAME}.box.part`), {force: true})
    const run = await cutPush([derived, '--base', `${BASE}@1999.1.0`], /^Upload/, /^ {2}\d+%/, 'SIGKILL')
    expect(run.cut, run.stderr).toBe(true)
    const reasons = run.stderr.split('\n').filter((l) => l.startsWith('  sending the whole box: '))
    expect(reasons, run.stderr).toHaveLength(1)
    expect(reasons[0]).toMatch(/no version 1999\.1\.0 of os101\/debian12/)
    expect(run.stderr).not.toMatch(/delta against/)
    // It was uploading the box, not a delta, when it was stopped.
    expect(existsSync(join(incoming(), `${NAME}.box.part`))).toBe(true)
    expect(existsSync(join(incoming(), `${NAME}.delta.part`))).toBe(false)
    rmSync(join(incoming(), `${NAME}.box.part`), {force: true})
  }, 600_000)

  it('leaves a delta upload cut half way resumable, with nothing defined', async () => {
    rmSync(join(incoming(), `${NAME}.delta.part`), {force: true})
    const run = await cutPush([], /delta against/, /^ {2}([3-9]0)%/, 'SIGKILL', inProject())
    expect(run.cut, run.stderr).toBe(true)
    expect(run.stderr).toContain(`delta against ${BASE} ${VERSION}`)
    expect(vagrantRuns()).toEqual([`package --output ${join(project, '.vagrant', 'shien', `${NAME}.packaging.box`)}`])
    const part = join(incoming(), `${NAME}.delta.part`)
    expect(existsSync(part), run.stderr).toBe(true)
    expect(statSync(part).size).toBeGreaterThan(0)
    expect(await definedDomains()).not.toContain(`${blade.account}-${SLOT}`)
  }, 600_000)

  it('sends the changed blocks only, and the VM runs on an overlay of the untouched base', async () => {
    const run = await runShien(['push', '--host', 'blade', '--slot', SLOT, '--name', NAME, '--json'], {home: blade.laptopHome, ...inProject()})
    expect(run.exitCode, run.stderr + run.stdout).toBe(0)
    const result = run.json
    expect(result.delta).toMatchObject({used: true, base: BASE, version: VERSION})
    // The re-run after the cut packaged nothing: the box kept in .vagrant/shien/ went, and its
    // upload was taken up where it stopped. Once pushed, nothing is kept.
    expect(vagrantRuns()).toHaveLength(1)
    expect(result.box.reused).toBe(true)
    expect(result.box.resumedFrom).toBeGreaterThan(0)
    expect(result.box.sent).toBe(result.box.size - result.box.resumedFrom)
    expect(existsSync(join(project, '.vagrant', 'shien'))).toBe(false)
    // With --json the progress lines are silent; the result says what the delta was.
    expect(result.delta.bytes).toBe(result.box.size)
    // 48 MiB changed in a 220 MiB box: the delta holds the changed blocks (random, so as they
    // are) and little else, a small part of the whole box.
    const ratio = result.box.size / statSync(derived).size
    console.log(`delta push: a ${result.box.size}-byte delta for a ${statSync(derived).size}-byte box (${ratio.toFixed(3)} of it)`)
    expect(result.box.size).toBeLessThan(result.delta.changedBlocks * 65536 * 1.05 + 2 ** 20)
    expect(ratio).toBeLessThan(0.3)
    expect(await definedDomains()).toContain(`${blade.account}-${SLOT}`)
    sshPort = Number(/-p (\d+)/.exec(result.ssh)![1])

    const image = join(blade.storageRoot, 'users', blade.account, 'images', `${SLOT}.qcow2`)
    const {stdout} = await execa('qemu-img', ['info', '--output=json', '-U', '-f', 'qcow2', image])
    const info = JSON.parse(stdout) as {'backing-filename'?: string; 'backing-filename-format'?: string}
    expect(info['backing-filename']).toBe(basePath)
    expect(info['backing-filename-format']).toBe('qcow2')
    expect(await sha256(basePath)).toBe(baseSha)
  }, 1_200_000)

  it('lets the student in with their own key, the changed files in place, and not with the insecure key', async () => {
    expect(sshPort, 'the delta push did not report an SSH port').toBeGreaterThan(0)
    const deadline = Date.now() + 300_000
    let last = ''
    while (Date.now() < deadline) {
      const r = await execa('ssh', [...sshArgs(blade.identityFile), 'true'], {reject: false})
      if (r.exitCode === 0) break
      last = String(r.stderr)
      await new Promise((f) => setTimeout(f, 5000))
    }
    const inside = await execa('ssh', [...sshArgs(blade.identityFile), 'stat -c %s /home/vagrant/data.bin; test -e /etc/motd && echo motd || echo no-motd'])
    expect(inside.stdout.split('\n'), last).toEqual([String(DATA_BYTES), 'no-motd'])
    const keyDir = mkdtempSync(join(tmpdir(), 'keys-'))
    try {
      for (const name of ['vagrant.key.rsa', 'vagrant.key.ed25519']) {
        await execa('install', ['-m', '0600', join(INSECURE, name), join(keyDir, name)])
        const r = await execa('ssh', [...sshArgs(join(keyDir, name)), 'true'], {reject: false})
        expect(r.exitCode, `${name} must be refused`).toBe(255)
      }
    } finally {
      rmSync(keyDir, {recursive: true, force: true})
    }
  }, 600_000)
})
