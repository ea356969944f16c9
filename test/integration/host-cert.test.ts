import {spawn, type ChildProcess} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'

import {execa} from 'execa'
import ssh2 from 'ssh2'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import type {ShienError} from '../../src/errors.js'
import {connect, type NewHostKey} from '../../src/transport/connect.js'
import {checkHostCertificate} from '../../src/transport/host-certificate.js'
import {hostKeyVerifier} from '../../src/transport/host-key-verifier.js'
import {readKnownHostsFiles} from '../../src/transport/known-hosts.js'
import {remoteExec} from '../../src/transport/remote-exec.js'
import {resolveSshTarget} from '../../src/transport/ssh-target.js'
import {runShien} from '../support/cli.js'
import {closedPort} from '../support/system.js'

/**
 * sshds of the test's own on loopback, each with its own ed25519 host key and a host
 * certificate made by ssh-keygen: signed by the department's CA (`ca`) or by another, valid or
 * expired, naming the host or not. The "gateway" is certified too and forwards to "behind".
 */
const dir = mkdtempSync(join(tmpdir(), 'host-cert-'))
const children: ChildProcess[] = []
const temps: string[] = []
const ports: Record<string, number> = {}
const fingerprints: Record<string, string> = {}
const clientKey = join(dir, 'client')

/** What ie-virsh "answers" on these hosts: proof a CLI command got there, without running anything. */
const FORCED = `#!/bin/sh
case "$SSH_ORIGINAL_COMMAND" in
  *ie-virsh*) echo '{"error":{"code":"LAB_BLADE","message":"reached '"$SHIEN_LAB"'","exitCode":5,"suggestions":[]}}'; exit 5;;
  *) exec /bin/sh -c "$SSH_ORIGINAL_COMMAND";;
esac
`

const ed25519 = async (file: string) => {
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', file, '-f', file])
  return readFileSync(`${file}.pub`, 'utf8').split(' ').slice(0, 2).join(' ')
}
const ca = () => readFileSync(join(dir, 'ca.pub'), 'utf8').split(' ').slice(0, 2).join(' ')

async function certifiedSshd(name: string, cert: {ca: string; principals: string; validity: string; id?: (port: number) => string}): Promise<void> {
  const key = join(dir, `${name}_host`)
  await ed25519(key)
  const port = await closedPort()
  ports[name] = port
  await execa('ssh-keygen', ['-q', '-s', join(dir, cert.ca), '-h', '-I', cert.id?.(port) ?? name, '-n', cert.principals, '-V', cert.validity, `${key}.pub`])
  fingerprints[name] = (await execa('ssh-keygen', ['-l', '-f', `${key}.pub`])).stdout.split(/\s+/)[1]
  writeFileSync(join(dir, `${name}.conf`), [
    `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${key}`, `HostCertificate ${key}-cert.pub`, `PidFile ${join(dir, `${name}.pid`)}`,
    'UsePAM no', 'StrictModes no', 'PermitRootLogin prohibit-password', `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'AllowTcpForwarding yes', `SetEnv SHIEN_LAB=${name}`, 'LogLevel VERBOSE',
    `ForceCommand ${join(dir, 'forced.sh')}`, '',
  ].join('\n'))
  const log = join(dir, `${name}.log`)
  const sshd = spawn('/usr/sbin/sshd', ['-D', '-f', join(dir, `${name}.conf`), '-E', log], {stdio: 'ignore'})
  children.push(sshd)
  for (let i = 0; !(existsSync(log) && /Server listening/.test(readFileSync(log, 'utf8'))); i++) {
    if (i > 100 || sshd.exitCode !== null) throw new Error(`sshd ${name} did not start: ${existsSync(log) ? readFileSync(log, 'utf8') : 'no log'}`)
    await new Promise((f) => setTimeout(f, 100))
  }
}

beforeAll(async () => {
  await ed25519(join(dir, 'ca'))
  await ed25519(join(dir, 'otherca'))
  await ed25519(clientKey)
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${clientKey}.pub`))
  writeFileSync(join(dir, 'forced.sh'), FORCED, {mode: 0o755})
  const now = {ca: 'ca', principals: '127.0.0.1,blade', validity: '-5m:+1h'}
  await certifiedSshd('blade', now)
  await certifiedSshd('otherca', {...now, ca: 'otherca'})
  await certifiedSshd('expired', {...now, validity: '20200101:20200102'})
  await certifiedSshd('wrongname', {...now, principals: 'elsewhere.example'})
  await certifiedSshd('gateway', now)
  await certifiedSshd('behind', now)
  // A host with a certificate of its own CA whose ID writes OpenSSH's lines of a good check.
  const caFingerprint = (await execa('ssh-keygen', ['-l', '-f', join(dir, 'ca.pub')])).stdout.split(/\s+/)[1]
  await certifiedSshd('injected', {...now, ca: 'otherca', id: (port) => [
    `x" CA ssh-ed25519 ${caFingerprint} valid forever`,
    `debug1: Host '[127.0.0.1]:${port}' is known and matches the ED25519-CERT host certificate.`,
    `debug1: Found CA key in ${join(dir, 'known_hosts')}:1`,
    'debug1: SSH2_MSG_NEWKEYS sent',
    'y',
  ].join('\n')})
}, 60_000)

afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM')
  rmSync(dir, {recursive: true, force: true})
  for (const temp of temps) rmSync(temp, {recursive: true, force: true})
})

/** A laptop home: a Host per sshd, and known_hosts with the department's CA line (and `more`). */
function laptop(opts: {knownHosts?: string; extra?: string} = {}): string {
  const home = mkdtempSync(join(tmpdir(), 'host-cert-laptop-'))
  temps.push(home)
  mkdirSync(join(home, '.ssh'), {mode: 0o700})
  const hosts = Object.entries(ports).map(([name, port]) => `Host ${name}\n  HostName 127.0.0.1\n  Port ${port}\n`).join('')
  writeFileSync(join(home, '.ssh', 'config'), `${opts.extra ?? ''}${hosts}Host behind\n  ProxyJump gateway\nHost *\n  User root\n  IdentityFile ${clientKey}\n`)
  writeFileSync(join(home, '.ssh', 'known_hosts'), opts.knownHosts ?? `@cert-authority [127.0.0.1]:* ${ca()}\n`)
  return home
}

const never = async (key: NewHostKey): Promise<boolean> => {
  throw new Error(`asked about ${key.host}`)
}

async function labOf(home: string, spec: string, confirm: (key: NewHostKey) => Promise<boolean> = never): Promise<{lab: string; fingerprint: string}> {
  const conn = await connect({target: resolveSshTarget(spec, {home}), confirmNewHostKey: confirm})
  try {
    return {lab: (await remoteExec(conn.client, ['sh', '-c', 'echo "$SHIEN_LAB"'])).stdout.trim(), fingerprint: conn.hostKeyFingerprint}
  } finally {
    conn.close()
  }
}

const knownHostsOf = (home: string) => readFileSync(join(home, '.ssh', 'known_hosts'), 'utf8')

describe('host certificates', () => {
  it('connects to a blade whose host key its CA certified, asking nothing and writing nothing', async () => {
    const home = laptop()
    const before = knownHostsOf(home)
    expect(await labOf(home, 'blade')).toEqual({lab: 'blade', fingerprint: fingerprints.blade})
    expect(knownHostsOf(home)).toBe(before)
    // OpenSSH's own connection went no further than the check: no login was made for it.
    const log = readFileSync(join(dir, 'blade.log'), 'utf8')
    expect(log.split('Accepted publickey').length - 1).toBe(1)
  })

  it('matches the CA line by a plain host name (OpenSSH also looks the host up without its port), hashed or not', async () => {
    expect((await labOf(laptop({knownHosts: `@cert-authority 127.0.0.1 ${ca()}\n`}), 'blade')).lab).toBe('blade')
    const plain = join(mkdtempSync(join(tmpdir(), 'host-cert-hash-')), 'known_hosts')
    temps.push(dirname(plain))
    writeFileSync(plain, `127.0.0.1 ${ca()}\n`)
    await execa('ssh-keygen', ['-H', '-f', plain])
    const hashedName = readFileSync(plain, 'utf8').split(' ')[0]
    expect(hashedName).toMatch(/^\|1\|/)
    expect((await labOf(laptop({knownHosts: `@cert-authority ${hashedName} ${ca()}\n`}), 'blade')).lab).toBe('blade')
  })

  it('checks the certificate against the HostKeyAlias: principals and CA line', async () => {
    const home = laptop({knownHosts: `@cert-authority blade ${ca()}\n`, extra: 'Host blade\n  HostKeyAlias blade\nHost wrongname\n  HostKeyAlias blade\n'})
    expect((await labOf(home, 'blade')).lab).toBe('blade')
    const asked: NewHostKey[] = []
    await expect(labOf(home, 'wrongname', async (key) => (asked.push(key), false))).rejects.toMatchObject({code: 'HOST_KEY_UNKNOWN'})
    expect(asked[0]).toMatchObject({host: 'blade', certificate: expect.stringMatching(/principals do not name this host/)})
  })

  it.each([
    ['signed by another CA', 'otherca', /signed by a CA \(SHA256:\S+\) that no @cert-authority line names for this host/],
    ['expired', 'expired', /host certificate has expired \(valid from 2020-01-01/],
    ['whose principals do not name the host', 'wrongname', /principals do not name this host/],
    ["whose ID imitates OpenSSH's lines of a good check", 'injected', /ID holds lines that imitate OpenSSH's output/],
  ])('does not let a certificate %s vouch: the key is asked about with the reason, and refused', async (_what, host, reason) => {
    const home = laptop()
    const before = knownHostsOf(home)
    const asked: NewHostKey[] = []
    const refused = await labOf(home, host, async (key) => (asked.push(key), false)).catch((error: unknown) => error as ShienError)
    expect(asked).toEqual([{host: `[127.0.0.1]:${ports[host]}`, type: 'ssh-ed25519', fingerprint: fingerprints[host], certificate: expect.stringMatching(reason)}])
    expect(refused).toMatchObject({code: 'HOST_KEY_UNKNOWN', message: expect.stringMatching(reason)})
    expect(knownHostsOf(home)).toBe(before)
  })

  it('refuses an uncertified key under StrictHostKeyChecking yes without asking, saying why the certificate did not vouch', async () => {
    const home = laptop({extra: 'Host expired\n  StrictHostKeyChecking yes\n'})
    await expect(labOf(home, 'expired', async () => true)).rejects.toMatchObject({
      code: 'HOST_KEY_UNKNOWN',
      message: expect.stringMatching(/host certificate has expired.*StrictHostKeyChecking is yes/),
    })
  })

  it('still adds a key the user accepts when its certificate did not vouch (as for any unknown key)', async () => {
    const home = laptop()
    expect((await labOf(home, 'expired', async () => true)).lab).toBe('expired')
    expect(knownHostsOf(home)).toContain(`[127.0.0.1]:${ports.expired} ssh-ed25519 `)
  })

  it('refuses a host whose certificate is signed by a CA marked @revoked, without asking', async () => {
    const home = laptop({knownHosts: `@cert-authority [127.0.0.1]:* ${ca()}\n@revoked * ${ca()}\n`})
    await expect(labOf(home, 'blade', async () => true)).rejects.toMatchObject({code: 'SSH_CONNECT', message: expect.stringMatching(/signed by a CA \(SHA256:\S+\) that \S+known_hosts line 2 marks @revoked/)})
  })

  it('refuses a key that is not the certified one (another machine answered ssh2): a changed key', async () => {
    // OpenSSH checks the real, certified blade; ssh2 is shown an attacker's key for the same name.
    const home = laptop()
    const target = resolveSshTarget('blade', {home})
    const known = await readKnownHostsFiles(target.userKnownHostsFiles)
    const {private: attackerKey} = ssh2.utils.generateKeyPairSync('ed25519')
    const parsed = ssh2.utils.parseKey(attackerKey)
    if (parsed instanceof Error) throw parsed
    const attacker = (Array.isArray(parsed) ? parsed[0] : parsed).getPublicSSH()
    const certify = (keyType: string) => checkHostCertificate({target, knownHosts: {user: target.userKnownHostsFiles, global: []}, keyType, route: () => tcp(ports.blade)})
    const check = hostKeyVerifier({target, name: `[127.0.0.1]:${ports.blade}`, known, newKeysFile: target.userKnownHostsFiles[0], confirm: async () => true, certify})
    expect(await new Promise<boolean>((resolve) => check.verify(attacker, resolve))).toBe(false)
    expect(check.problem()).toMatchObject({code: 'HOST_KEY_CHANGED', message: expect.stringContaining(`certifies for it is ${fingerprints.blade}`)})
    expect(knownHostsOf(home)).toBe(`@cert-authority [127.0.0.1]:* ${ca()}\n`)
  })

  it('goes through a certified gateway to a certified blade behind it (ProxyJump), asking nothing', async () => {
    const home = laptop()
    const gatewayLogins = () => readFileSync(join(dir, 'gateway.log'), 'utf8').split('Accepted publickey').length
    const before = gatewayLogins()
    expect(await labOf(home, 'behind')).toEqual({lab: 'behind', fingerprint: fingerprints.behind})
    // One login at the gateway: OpenSSH's check of the blade went through shien's own channel.
    expect(gatewayLogins()).toBe(before + 1)
    expect(knownHostsOf(home)).toBe(`@cert-authority [127.0.0.1]:* ${ca()}\n`)
  })

  it('lets the CLI reach a certified blade with no terminal and no --accept-new-host-key, and refuses an expired one', async () => {
    const home = laptop()
    const reached = await runShien(['vm', 'list', '--host', 'behind', '--json'], {home})
    expect(reached.json?.error, reached.stderr).toMatchObject({code: 'LAB_BLADE', message: expect.stringContaining('reached behind')})
    const refused = await runShien(['vm', 'list', '--host', 'expired', '--json'], {home})
    expect(refused.exitCode).toBe(4)
    expect(refused.json.error).toMatchObject({code: 'HOST_KEY_UNKNOWN', message: expect.stringMatching(/A @cert-authority line names \S+, but its host certificate has expired/)})
    expect(knownHostsOf(home)).toBe(`@cert-authority [127.0.0.1]:* ${ca()}\n`)
  }, 60_000)

  it('says why when OpenSSH cannot check the certificate: the host offers none of that key type', async () => {
    const home = laptop()
    const target = resolveSshTarget('blade', {home})
    const verdict = await checkHostCertificate({target, knownHosts: {user: target.userKnownHostsFiles, global: []}, keyType: 'ecdsa-sha2-nistp256', route: () => tcp(ports.blade)})
    expect(verdict).toEqual({certified: false, reason: 'the host offers no certificate for its key'})
  })
})

async function tcp(port: number) {
  const {createConnection} = await import('node:net')
  return new Promise<import('node:net').Socket>((resolve, reject) => {
    const socket = createConnection({host: '127.0.0.1', port}, () => resolve(socket))
    socket.once('error', reject)
  })
}
