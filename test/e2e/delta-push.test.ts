import {createHash, randomBytes} from 'node:crypto'
import {createReadStream, mkdtempSync, rmSync, statSync} from 'node:fs'
import {writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {pipeline} from 'node:stream/promises'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {REPO_ROOT, runShien} from '../support/cli.js'
import {GUESTFS_ENV} from '../support/guest-image.js'
import {ensureLocalBlade, type LocalBlade} from '../support/local-blade.js'
import {testBoxPath} from '../support/test-box.js'
import {clearSlot, definedDomains} from '../support/virsh.js'

/**
 * A delta push over the local blade: the test box is published as a course base, a student's
 * box is made from it by changing a few MiB of its disk, and `shien push --base` sends only the
 * blocks that differ; the VM then runs on a thin overlay of the base and lets the student in.
 */

// Files run one at a time and each clears its slot after itself: this one shares 03 with push.test.ts.
const SLOT = '03'
const BASE = 'os101/debian12'
const VERSION = '2026.1.0'
const INSECURE = join(REPO_ROOT, 'test/fixtures/vagrant-insecure')

let blade: LocalBlade
let work: string
let derived: string
let basePath: string
let baseSha: string
let sshPort: number

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256')
  await pipeline(createReadStream(path), hash)
  return hash.digest('hex')
}

/** The test box with a changed disk: an 8 MiB file added and one removed, through libguestfs. */
async function deriveBox(box: string): Promise<string> {
  const dir = join(work, 'box')
  await execa('mkdir', ['-p', dir])
  const {stdout: listing} = await execa('tar', ['-tf', box])
  const entries = listing.split('\n').filter(Boolean)
  await execa('tar', ['-xf', box, '-C', dir])
  const vmdk = entries.find((e) => e.endsWith('.vmdk'))!
  const disk = join(work, 'disk.qcow2')
  await execa('qemu-img', ['convert', '-f', 'vmdk', '-O', 'qcow2', join(dir, vmdk), disk])
  const data = join(work, 'data.bin')
  await writeFile(data, randomBytes(128 * 65536))
  await execa('guestfish', ['-a', disk, '-i', 'upload', data, '/home/vagrant/data.bin', ':', 'rm-f', '/etc/motd'], {env: GUESTFS_ENV})
  rmSync(join(dir, vmdk))
  await execa('qemu-img', ['convert', '-f', 'qcow2', '-O', 'vmdk', '-o', 'subformat=streamOptimized', disk, join(dir, vmdk)])
  const out = join(work, 'student.box')
  await execa('tar', ['-cf', out, '-C', dir, ...entries])
  return out
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
}, 1_200_000)

afterAll(async () => {
  if (blade) await clearSlot(blade.account, SLOT)
  if (work) rmSync(work, {recursive: true, force: true})
})

describe('shien push --base, end to end on the local blade', () => {
  it('sends the changed blocks only, and the VM runs on an overlay of the untouched base', async () => {
    const run = await runShien(['push', derived, '--host', 'blade', '--slot', SLOT, '--name', 'delta', '--base', `${BASE}@${VERSION}`, '--json'], {
      home: blade.laptopHome,
    })
    expect(run.exitCode, run.stderr + run.stdout).toBe(0)
    const result = run.json
    expect(result.delta).toMatchObject({used: true, base: BASE, version: VERSION})
    // With --json the progress lines are silent; the result says what the delta was.
    expect(result.delta.bytes).toBeLessThan(result.delta.virtualSize / 20)
    // 8 MiB changed in a 170 MiB box: what crossed the wire is a small part of the whole box.
    const ratio = result.box.sent / statSync(derived).size
    console.log(`delta push: ${result.box.sent} bytes sent for a ${statSync(derived).size}-byte box (${ratio.toFixed(3)} of it)`)
    expect(ratio).toBeLessThan(0.15)
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
    expect(inside.stdout.split('\n'), last).toEqual([String(128 * 65536), 'no-motd'])
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
