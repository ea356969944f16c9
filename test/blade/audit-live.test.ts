/**
 * `shien audit` against the real test box on the local blade: one VM pushed with `shien push`
 * (hardened) in slot 04 of the first student, from the test box's disk as VMware lays it out (a
 * split VMDK; test/e2e/provider-push.test.ts boots the Parallels and libvirt layouts), and one VM booted from the box's VMDK converted
 * WITHOUT hardening, defined through ie-virsh in slot 04 of the second student. Both images are
 * audited offline once both VMs have booted and while they run (appliances: push 1, audit 2 + 1 for the published box),
 * then both VMs are probed live over their forwarded SSH ports.
 */
import {chmod, mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {connect} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import type {AuditResult, DomainReport, Finding} from '../../src/audit/types.js'
import {runShien} from '../support/cli.js'
import {ensureLocalBlade, type LocalBlade} from '../support/local-blade.js'
import {providerBoxesFrom} from '../support/provider-boxes.js'
import {testBoxPath} from '../support/test-box.js'
import {clearSlot, ieVirshAs} from '../support/virsh.js'
import {GUESTFS_ENV} from '../support/guest-image.js'

const SLOT = '04'

let blade: LocalBlade
let work: string
let config: string
let pushed: string
let unhardened: string
let publishedBox: string

const imageOf = (account: string) => join(blade.storageRoot, 'users', account, 'images', `${SLOT}.qcow2`)
const brief = (fs: Finding[]) => fs.map((f) => [f.code, f.severity, f.user ?? '', f.file ?? ''].join(' ')).sort()

/** The box's disk, converted as `shien push` would but not hardened, into the second student's slot. */
async function bootUnhardened(vmdk: string): Promise<void> {
  await execa('runuser', ['-u', blade.otherAccount, '--', 'qemu-img', 'convert', '-q', '-f', 'vmdk', '-O', 'qcow2', vmdk, unhardened])
  for (const step of ['define', 'start']) {
    const r = await ieVirshAs(blade.otherAccount, [step, SLOT, '--json'])
    expect(r.exitCode, `${step}: ${String(r.stdout)} ${String(r.stderr)}`).toBe(0)
  }
}

async function push(box: string): Promise<void> {
  const r = await runShien(['push', box, '--host', 'blade', '--slot', SLOT, '--name', 'audit', '--json'], {home: blade.laptopHome})
  expect(r.exitCode, r.stderr + r.stdout).toBe(0)
}

/** Waits until something sends an SSH banner on the port (the guest's sshd is up). */
async function waitForBanner(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const banner = await new Promise<string>((resolve) => {
      const s = connect(port, '127.0.0.1')
      const done = (text: string) => {
        s.destroy()
        resolve(text)
      }
      s.setTimeout(5000, () => done(''))
      s.once('data', (d: Buffer) => done(d.toString('latin1')))
      s.once('error', () => done(''))
      s.once('close', () => done(''))
    })
    if (banner.startsWith('SSH-')) return
    await new Promise((f) => setTimeout(f, 3000))
  }
  throw new Error(`No SSH banner on 127.0.0.1:${port} within ${timeoutMs / 1000} s`)
}

async function sshPort(account: string): Promise<number> {
  const list = JSON.parse(String((await ieVirshAs(account, ['list', '--json'])).stdout))
  return list.domains.find((d: {slot: string}) => d.slot === SLOT).sshPort
}

beforeAll(async () => {
  blade = await ensureLocalBlade()
  const box = await testBoxPath()
  pushed = imageOf(blade.account)
  unhardened = imageOf(blade.otherAccount)
  await Promise.all([clearSlot(blade.account, SLOT), clearSlot(blade.otherAccount, SLOT)])
  work = await mkdtemp(join(tmpdir(), 'shien-audit-live-'))
  // The second student converts the VMDK as themself, so it must be readable to them.
  await chmod(work, 0o755)
  await execa('tar', ['-xf', box, '-C', work, 'box-disk001.vmdk'])
  const vmdk = join(work, 'box-disk001.vmdk')
  await chmod(vmdk, 0o644)
  publishedBox = join(work, 'storage', 'boxes', 'debian-12', '1.0', 'box.img')
  await mkdir(join(work, 'storage', 'boxes', 'debian-12', '1.0'), {recursive: true})
  config = join(work, 'config.json')
  // An appliance that never comes up fails its image with AUDIT_TIMEOUT, which the test then
  // prints, instead of the test's own timeout hiding which image and why.
  await writeFile(config, JSON.stringify({storageRoot: join(work, 'storage'), audit: {imageTimeoutMs: 300_000}}))
  // The pushed VM comes from the box as VMware Fusion packages it: a .vmx and a split VMDK.
  const {vmware} = await providerBoxesFrom(box, work, ['vmware'])
  await Promise.all([
    push(vmware),
    bootUnhardened(vmdk),
    execa('qemu-img', ['convert', '-q', '-f', 'vmdk', '-O', 'qcow2', vmdk, publishedBox]),
  ])
  // The images are audited while their VMs run, but not while both boot under TCG on the same
  // cores as the appliances.
  await Promise.all([blade.account, blade.otherAccount].map(async (a) => waitForBanner(await sshPort(a), 300_000)))
}, 900_000)

afterAll(async () => {
  if (blade) await Promise.all([clearSlot(blade.account, SLOT), clearSlot(blade.otherAccount, SLOT)])
  if (work) await rm(work, {recursive: true, force: true})
})

describe('shien audit on the real test box', () => {
  let offline: AuditResult

  it('finds Vagrant\'s defaults in the unhardened image, and nothing in the one shien push hardened', async () => {
    const run = await runShien(['audit', '--config', config, '--json', pushed, unhardened], {home: work, env: GUESTFS_ENV})
    offline = run.json as AuditResult
    expect(run.exitCode, run.stderr + JSON.stringify(offline?.images)).toBe(10)
    const findings = (image: string) => offline.findings.filter((f) => f.image === image)
    expect(brief(findings(pushed))).toEqual([])
    expect(brief(findings(unhardened))).toEqual([
      'box-host-key high  /etc/ssh',
      'insecure-key high vagrant /home/vagrant/.ssh/authorized_keys', 'insecure-key high vagrant /home/vagrant/.ssh/authorized_keys',
      'nopasswd-sudo high vagrant /etc/sudoers.d/vagrant',
      'sshd-password-auth medium  /etc/ssh/sshd_config.d/50-vagrant.conf',
      'weak-password high vagrant /etc/shadow', 'weak-password medium root /etc/shadow',
    ])
    // debootstrap's chpasswd writes yescrypt, Debian 12's default.
    expect(findings(unhardened).find((f) => f.code === 'weak-password')?.detail).toMatchObject({scheme: 'yescrypt', password: 'vagrant'})
    expect(findings(unhardened).find((f) => f.code === 'box-host-key')?.detail).toMatchObject({boxes: [publishedBox]})
    for (const [path, account] of [[pushed, blade.account], [unhardened, blade.otherAccount]]) {
      expect(offline.images!.find((i) => i.path === path)).toMatchObject({status: 'audited', applianceLaunches: 1, account, slot: SLOT})
    }
  }, 900_000)

  it('logs in to the unhardened VM with the insecure key and "vagrant", and not to the pushed one', async () => {
    const run = await runShien(['audit', '--live', '--json'], {home: work})
    const live = run.json as AuditResult
    expect(run.exitCode, run.stderr).toBe(10)
    const domain = (account: string) => live.domains!.find((d) => d.name === `${account}-${SLOT}`) as DomainReport
    const findings = (account: string) => live.findings.filter((f) => f.domain === `${account}-${SLOT}`)
    expect(brief(findings(blade.otherAccount))).toEqual(['live-insecure-key high vagrant ', 'live-password-auth medium  ', 'live-weak-password high vagrant '])
    expect(findings(blade.otherAccount).find((f) => f.code === 'live-weak-password')?.detail).toEqual({source: 'builtin', password: 'vagrant'})
    expect(brief(findings(blade.account))).toEqual([])
    for (const [account, image, methods] of [[blade.account, pushed, ['publickey']], [blade.otherAccount, unhardened, ['publickey', 'password']]] as const) {
      const d = domain(account)
      expect(d).toMatchObject({status: 'audited', account, slot: SLOT, ports: [{port: 22, state: 'open'}], ssh: {methods}})
      expect(d.reachedVia.forwards).toEqual([{guestPort: 22, host: '127.0.0.1', port: await sshPort(account)}])
      // The VM presents a host key its image holds: offline and live saw the same machine.
      const offlineKeys = offline.images!.find((i) => i.path === image)!.hostKeys.map((k) => k.fingerprint)
      expect(offlineKeys).toContain(d.ssh!.hostKey)
      // Bounded: two keys and at most six passwords per account, two accounts.
      expect(d.attempts).toBeGreaterThan(0)
      expect(d.attempts).toBeLessThanOrEqual(16)
    }
  }, 600_000)
})
