import {readFileSync, writeFileSync} from 'node:fs'

import {execa} from 'execa'
import ssh2 from 'ssh2'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runShien} from '../support/cli.js'
import {ensureLocalBlade, type LocalBlade} from '../support/local-blade.js'
import {testBoxPath} from '../support/test-box.js'
import {clearSlot} from '../support/virsh.js'
import {waitForBanner} from '../support/ssh-banner.js'

// shien vm ssh and vm stop on one VM of the real test box, pushed to the local blade and booted
// under TCG (slow: one push, one push with --replace, one boot each). The VM's host keys are the
// ones harden made, recorded on the laptop by the push: no question, no warning, and a key that
// does not match is refused.
const SLOT = '02'
const BOOT_MS = 300_000

let blade: LocalBlade
let box: string
let alias: string
let savedKnownHosts: string

const shien = (args: string[]) => runShien([...args, '--host', blade.hostAlias], {home: blade.laptopHome})
const aliasLines = () => readFileSync(blade.knownHosts, 'utf8').split('\n').filter((l) => l.startsWith(`${alias} `))
const otherLines = () => readFileSync(blade.knownHosts, 'utf8').split('\n').filter((l) => !l.startsWith(`${alias} `))
const domstate = async () => (await execa('virsh', ['-c', 'qemu:///system', 'domstate', `${blade.account}-${SLOT}`], {reject: false})).stdout.trim()

async function push(replace: boolean): Promise<{sshPort: number; result: any}> {
  const r = await runShien(['push', box, '--host', blade.hostAlias, '--slot', SLOT, '--name', 'vmssh', '--json', ...(replace ? ['--replace'] : [])], {home: blade.laptopHome})
  expect(r.exitCode, r.stderr + r.stdout).toBe(0)
  const list = await shien(['vm', 'list', '--json'])
  const domain = list.json.domains.find((d: {slot: string}) => d.slot === SLOT)
  return {sshPort: domain.sshPort, result: r.json}
}

/** `shien vm ssh SLOT -- id` as a student types it (no --json), stdin not a terminal. */
async function loginId() {
  const r = await runShien(['vm', 'ssh', SLOT, '--host', blade.hostAlias, '--', 'id', '-un'], {home: blade.laptopHome})
  return r
}

beforeAll(async () => {
  blade = await ensureLocalBlade()
  box = await testBoxPath()
  alias = `shien-${blade.account}-${SLOT}.${blade.host}-${blade.port}`
  savedKnownHosts = readFileSync(blade.knownHosts, 'utf8')
  await clearSlot(blade.account, SLOT)
}, 900_000)

afterAll(async () => {
  if (!blade) return
  await clearSlot(blade.account, SLOT)
  writeFileSync(blade.knownHosts, savedKnownHosts)
})

describe('shien vm ssh and vm stop on a pushed VM (local blade)', () => {
  it('after a push, logs in with no question and no warning, under the alias the push recorded', async () => {
    const others = otherLines()
    const {sshPort, result} = await push(false)
    expect(result.hostKeys).toMatchObject({recorded: true, alias, path: blade.knownHosts, keys: 3, replaced: 0})
    expect(result.login).toBe(`shien vm ssh ${SLOT}`)
    expect(result.ssh).toContain(`-o HostKeyAlias=${alias}`)
    expect(result.ssh).not.toContain('[127.0.0.1]')
    expect(aliasLines()).toHaveLength(3)
    expect(otherLines()).toEqual(others)
    await waitForBanner(sshPort, BOOT_MS)
    const r = await loginId()
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.stdout.trim()).toBe('vagrant')
    expect(r.stderr).not.toMatch(/authenticity|warning|changed|added/i)
    // The Host block names the same VM.
    const block = await shien(['vm', 'ssh-config', SLOT, '--json'])
    expect(block.json).toMatchObject({host: alias, hostKeyAlias: alias, port: sshPort, user: 'vagrant', proxyJump: blade.hostAlias, userKnownHostsFile: blade.knownHosts})
  }, BOOT_MS + 600_000)

  it('after a push with --replace (new host keys) still logs in with no warning; the old keys are gone', async () => {
    const before = aliasLines()
    const others = otherLines()
    const {sshPort, result} = await push(true)
    expect(result.hostKeys).toMatchObject({recorded: true, alias, keys: 3, replaced: 3})
    const after = aliasLines()
    expect(after).toHaveLength(3)
    expect(after.filter((l) => before.includes(l))).toEqual([])
    expect(otherLines()).toEqual(others)
    await waitForBanner(sshPort, BOOT_MS)
    const r = await loginId()
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.stdout.trim()).toBe('vagrant')
    expect(r.stderr).not.toMatch(/authenticity|warning|changed|added/i)
  }, BOOT_MS + 600_000)

  it('refuses a tampered known_hosts entry for the alias', async () => {
    const good = readFileSync(blade.knownHosts, 'utf8')
    const {public: attacker} = ssh2.utils.generateKeyPairSync('ed25519')
    writeFileSync(blade.knownHosts, [...otherLines().filter((l) => l.length > 0), `${alias} ${attacker.split(' ').slice(0, 2).join(' ')}`, ''].join('\n'))
    try {
      const r = await loginId()
      expect(r.exitCode).toBe(255)
      expect(r.stdout).toBe('')
      expect(r.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/)
      const json = await shien(['vm', 'ssh', SLOT, '--json', '--', 'id'])
      expect(json.json.error).toMatchObject({code: 'SSH_LOGIN_FAILED', exitCode: 4})
      // The entry that was there is not replaced behind the student's back.
      expect(aliasLines()).toHaveLength(1)
    } finally {
      writeFileSync(blade.knownHosts, good)
    }
  }, 120_000)

  it('vm stop shuts the VM down with ACPI, without destroying it', async () => {
    const r = await shien(['vm', 'stop', SLOT, '--timeout', '180', '--json'])
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.json).toMatchObject({name: `${blade.account}-${SLOT}`, slot: SLOT, state: 'shut off', outcome: 'shutdown', timeoutSeconds: 180})
    expect(await domstate()).toBe('shut off')
    const again = await shien(['vm', 'stop', SLOT, '--json'])
    expect(again.json).toMatchObject({outcome: 'not-running'})
  }, 300_000)
})
