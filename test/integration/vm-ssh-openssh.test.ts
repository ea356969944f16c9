import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi} from 'vitest'

import {recordVmHostKeys} from '../../src/client/vm/vm-host-keys.js'
import {bladeNaming, vmLogin, type VmAddress} from '../../src/client/vm/vm-login.js'
import {runVmSshCommand, type VmLoginPlan} from '../../src/client/vm/vm-ssh.js'
import {BLADE_PROTOCOL} from '../../src/protocol/blade-steps.js'
import {resolveSshTarget} from '../../src/transport/ssh-target.js'
import {runShien} from '../support/cli.js'
import {assertBuildIsCurrent, shien} from '../support/run-command.js'
import {startVmLab, type VmLab} from '../support/vm-lab.js'

// `shien vm ssh` and `vm ssh-config` against real OpenSSH: a lab blade and two lab VMs of this
// test's own (test/support/vm-lab.ts), never the local blade. The laptop's HOME is not the
// account's, so shien passes `ssh -F` its config, and the jump must follow it too.
const ALIAS_OF = (port: number) => `shien-e195701-01.127.0.0.1-${port}`
let lab: VmLab
let home: string
let knownHosts: string
const UNRELATED = 'elsewhere.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAWhHpLPd4VmqxU2Hb1z0tLTm2NnYfJ0xQ4ryi3kG7t3'

beforeAll(async () => {
  lab = await startVmLab()
  home = mkdtempSync(join(tmpdir(), 'vm-ssh-laptop-'))
  knownHosts = join(home, '.ssh', 'known_hosts')
  mkdirSync(join(home, '.ssh'), {mode: 0o700})
  writeFileSync(join(home, '.ssh', 'config'), [
    'Host labblade',
    '  HostName 127.0.0.1',
    `  Port ${lab.bladePort}`,
    '  User root',
    `  IdentityFile ${lab.clientKey}`,
    '  IdentitiesOnly yes',
    `  UserKnownHostsFile ${knownHosts}`,
    '  StrictHostKeyChecking yes',
    '',
  ].join('\n'))
}, 60_000)
afterAll(async () => {
  await lab?.stop()
  rmSync(home, {recursive: true, force: true})
})
beforeEach(() => writeFileSync(knownHosts, `${lab.bladeKnownHost}\n${UNRELATED}\n`, {mode: 0o600}))

describe('logging in to a VM with OpenSSH through the blade, its host keys recorded by shien', () => {
  const target = () => resolveSshTarget('labblade', {home})
  const naming = () => bladeNaming('labblade', undefined, home)
  const vm = (port: number): VmAddress => ({account: 'e195701', slot: '01', host: '127.0.0.1', port})
  // The lab's VMs have no vagrant account: the same login, as root.
  const plan = (port: number): VmLoginPlan => ({
    vm: 'e195701-01', slot: '01', state: 'running',
    login: {...vmLogin(target(), naming(), vm(port)), user: 'root'},
    hostKeys: {alias: ALIAS_OF(lab.bladePort), path: knownHosts, status: 'known'},
  })

  it('runs a command with no question and no warning once the keys are recorded', async () => {
    expect(plan(lab.vmPorts[0]).login.configFile).toBe(join(home, '.ssh', 'config'))
    await recordVmHostKeys(target(), naming(), vm(lab.vmPorts[0]), [lab.vmHostKeys[0]])
    const logins = lab.bladeLogins()
    const r = await runVmSshCommand(plan(lab.vmPorts[0]), ['id', '-un'])
    expect(r).toMatchObject({exitCode: 0, stdout: 'root', host: ALIAS_OF(lab.bladePort)})
    // Through the blade: its sshd saw the jump's login (with the key the laptop's -F config names).
    expect(lab.bladeLogins()).toBe(logins + 1)
    expect(r.stderr).not.toMatch(/warning|authenticity|added/i)
    // The remote command's own exit code is data, not an error.
    expect(await runVmSshCommand(plan(lab.vmPorts[0]), ['exit', '3'])).toMatchObject({exitCode: 3})
    expect(readFileSync(knownHosts, 'utf8')).toBe(`${lab.bladeKnownHost}\n${UNRELATED}\n${ALIAS_OF(lab.bladePort)} ${lab.vmHostKeys[0]}\n`)
  })

  it('after a push with --replace (new keys, new port) logs in with no warning, and the old key is refused', async () => {
    await recordVmHostKeys(target(), naming(), vm(lab.vmPorts[0]), [lab.vmHostKeys[0]])
    const done = await recordVmHostKeys(target(), naming(), vm(lab.vmPorts[1]), [lab.vmHostKeys[1]])
    expect(done).toMatchObject({alias: ALIAS_OF(lab.bladePort), keys: 1, replaced: 1})
    const r = await runVmSshCommand(plan(lab.vmPorts[1]), ['id', '-un'])
    expect(r.stdout).toBe('root')
    expect(r.stderr).not.toMatch(/warning|changed|authenticity/i)
    // A host presenting the old VM's key under the alias is refused.
    await expect(runVmSshCommand(plan(lab.vmPorts[0]), ['id'])).rejects.toMatchObject({code: 'SSH_LOGIN_FAILED', exitCode: 4})
  })

  it('refuses a tampered known_hosts entry for the alias', async () => {
    await recordVmHostKeys(target(), naming(), vm(lab.vmPorts[1]), [lab.vmHostKeys[1]])
    const text = readFileSync(knownHosts, 'utf8')
    writeFileSync(knownHosts, text.replace(lab.vmHostKeys[1], lab.vmHostKeys[0]))
    const refused = runVmSshCommand(plan(lab.vmPorts[1]), ['id'])
    await expect(refused).rejects.toMatchObject({code: 'SSH_LOGIN_FAILED'})
    await expect(refused).rejects.toThrow(/host key/i)
  })
})

describe('shien vm ssh-config, ssh and stop against the lab blade', () => {
  const cwd = process.cwd()
  const list = (state: string, port = lab.vmPorts[1]) => ({
    account: 'e195701', role: 'student', limits: {vms: 4},
    domains: [{slot: '01', name: 'e195701-01', state, sshPort: port, ssh: `ssh -p ${port} vagrant@127.0.0.1`}],
  })
  beforeAll(() => assertBuildIsCurrent())
  beforeEach(() => {
    vi.stubEnv('HOME', home)
    vi.stubEnv('XDG_CONFIG_HOME', join(home, '.config'))
    vi.stubEnv('SHIEN_HOST', undefined)
    vi.stubEnv('SSH_AUTH_SOCK', '')
    process.chdir(home)
  })
  afterEach(() => {
    process.chdir(cwd)
    vi.unstubAllEnvs()
  })

  it('prints the Host block and its fields, taking the host keys from the blade when known_hosts has none', async () => {
    lab.answer('ie-virsh list', list('running'))
    lab.answer('blade host-keys', {slot: '01', hostKeys: [lab.vmHostKeys[1]]})
    const before = lab.commands().length
    const r = await shien(['vm', 'ssh-config', '01', '--host', 'labblade', '--json'])
    expect(r.exitCode).toBe(0)
    const alias = ALIAS_OF(lab.bladePort)
    expect(r.json).toEqual({
      vm: 'e195701-01', slot: '01', host: alias, hostName: '127.0.0.1', port: lab.vmPorts[1], user: 'vagrant', proxyJump: 'labblade',
      hostKeyAlias: alias, userKnownHostsFile: knownHosts, identityFiles: [lab.clientKey], identitiesOnly: true,
      text: [`Host ${alias}`, '  HostName 127.0.0.1', `  Port ${lab.vmPorts[1]}`, '  User vagrant', '  ProxyJump labblade', `  HostKeyAlias ${alias}`,
        `  UserKnownHostsFile ${knownHosts}`, '  StrictHostKeyChecking yes', `  IdentityFile ${lab.clientKey}`, '  IdentitiesOnly yes', ''].join('\n'),
    })
    expect(lab.commands().slice(before)).toEqual(['sudo -n ie-virsh list --json', `shien blade host-keys --json --protocol ${BLADE_PROTOCOL} --slot 01`])
    expect(readFileSync(knownHosts, 'utf8')).toBe(`${lab.bladeKnownHost}\n${UNRELATED}\n${alias} ${lab.vmHostKeys[1]}\n`)
    // Keys known: the blade is not asked again, and nothing is rewritten.
    const again = lab.commands().length
    expect((await shien(['vm', 'ssh-config', '--host', 'labblade'])).stdout).toContain(`Host ${alias}\n`)
    expect(lab.commands().slice(again)).toEqual(['sudo -n ie-virsh list --json'])
  })

  it('vm ssh runs OpenSSH on the terminal it was given: the host key passes, then the login as vagrant is what fails here', async () => {
    // The lab VMs have no vagrant account, so the login itself is refused; what comes before
    // it (the jump, the recorded keys under the alias) is what this shows, from ssh's own words.
    lab.answer('ie-virsh list', list('running'))
    await recordVmHostKeys(resolveSshTarget('labblade', {home}), bladeNaming('labblade', undefined, home), {account: 'e195701', slot: '01'}, [lab.vmHostKeys[1]])
    const r = await runShien(['vm', 'ssh', '01', '--host', 'labblade', '--', 'id'], {home})
    expect(r.exitCode).toBe(255)
    expect(r.stderr).toMatch(/^vagrant@127\.0\.0\.1: Permission denied \(publickey\)/m)
    expect(r.stderr).not.toMatch(/authenticity|warning|changed/i)
    writeFileSync(knownHosts, readFileSync(knownHosts, 'utf8').replace(lab.vmHostKeys[1], lab.vmHostKeys[0]))
    const tampered = await runShien(['vm', 'ssh', '01', '--host', 'labblade', '--', 'id'], {home})
    expect(tampered.exitCode).toBe(255)
    expect(tampered.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED/)
    expect(tampered.stderr).not.toMatch(/Permission denied/)
  })

  it("never records keys from an admin's own records for another account's VM", async () => {
    lab.answer('ie-virsh list', {...list('running'), account: 'e195702'})
    lab.answer('blade host-keys', {slot: '01', hostKeys: [lab.vmHostKeys[1]]})
    const before = lab.commands().length
    const r = await shien(['vm', 'ssh-config', '01', '--account', 'e195702', '--host', 'labblade', '--json'])
    expect(r.json.error).toMatchObject({code: 'HOST_KEYS_UNKNOWN', exitCode: 6})
    expect(lab.commands().slice(before)).toEqual(['sudo -n ie-virsh list --account e195702 --json'])
    expect(readFileSync(knownHosts, 'utf8')).toBe(`${lab.bladeKnownHost}\n${UNRELATED}\n`)
  })

  it('refuses a VM that is not running, a slot without a VM, and --json without a command', async () => {
    lab.answer('ie-virsh list', list('shut off'))
    const stopped = await shien(['vm', 'ssh', '01', '--host', 'labblade', '--json', '--', 'id'])
    expect(stopped.exitCode).toBe(6)
    expect(stopped.json.error).toMatchObject({code: 'VM_NOT_RUNNING', suggestions: ['Start it first: shien vm start 01']})
    const none = await shien(['vm', 'ssh', '02', '--host', 'labblade', '--json', '--', 'id'])
    expect(none.json.error).toMatchObject({code: 'NOT_DEFINED', exitCode: 6})
    const noCommand = await shien(['vm', 'ssh', '01', '--host', 'labblade', '--json'])
    expect(noCommand.json.error).toMatchObject({code: 'USAGE', exitCode: 2})
    // Words after -- are the command, not the slot or flags: "--host" there is not shien's.
    const bad = await shien(['vm', 'ssh', 'x1', '--host', 'labblade', '--json', '--', '--host'])
    expect(bad.json.error).toMatchObject({code: 'BAD_SLOT', exitCode: 2})
  })

  it('vm stop asks ie-virsh for a shutdown with the timeout and reports what happened', async () => {
    lab.answer('ie-virsh shutdown', {name: 'e195701-01', slot: '01', state: 'shut off', outcome: 'shutdown', timeoutSeconds: 5, waitedMs: 2300})
    const before = lab.commands().length
    const r = await shien(['vm', 'stop', '01', '--timeout', '5', '--host', 'labblade', '--json'])
    expect(r.json).toMatchObject({outcome: 'shutdown', state: 'shut off'})
    expect(lab.commands().slice(before)).toEqual(['sudo -n ie-virsh shutdown 01 --timeout 5 --json'])
    // Without a slot: .shien.json's, else 01; the timeout 60 s unless given.
    const text = await shien(['vm', 'stop', '--host', 'labblade'])
    expect(text.stdout).toBe('Shut e195701-01 down (it powered off after 2.3 s).\n')
    expect(lab.commands().at(-1)).toBe('sudo -n ie-virsh shutdown 01 --timeout 60 --json')
    const zero = await shien(['vm', 'stop', '01', '--timeout', '0', '--host', 'labblade', '--json'])
    expect(zero.json.error).toMatchObject({code: 'USAGE', exitCode: 2})
  })
})
