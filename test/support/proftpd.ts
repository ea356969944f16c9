import {chmod, chown, copyFile, mkdir, mkdtemp, readFile, rename, rm, writeFile} from 'node:fs/promises'
import {Socket} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa, type ResultPromise} from 'execa'

import {closedPort} from './system.js'

/** A real ProFTPD with mod_tls on loopback, as strict FTPS servers run (TLSRequired, session reuse). */
export interface Proftpd {
  host: string
  port: number
  /** The test CA that signed the server certificate: what shien is told to trust. */
  caFile: string
  caPem: string
  /** The server certificate and key (the fake API serves HTTPS with them too). */
  certFile: string
  keyFile: string
  stateDir: string
  /** Replaces the accounts ProFTPD accepts (its AuthUserFile); homes are created as needed. */
  setAccounts(accounts: FtpAccount[]): Promise<void>
  homeOf(user: string): string
  /** Resets (kills) every established data connection: a cut mid-transfer. Returns how many. */
  cutDataConnections(): Promise<number>
  /** ProFTPD's system, TLS and transfer logs. */
  logs(): Promise<string>
  stop(): Promise<void>
}

export interface FtpAccount {
  user: string
  password: string
  /** Members of the `slow` group get `TransferRate STOR` (for faults that need time). */
  slow?: boolean
}

const running = new Map<string, Promise<Proftpd>>()

/**
 * Starts ProFTPD (once per process and certificate name) on a free loopback port, with a test
 * CA and a server certificate for `certName` (an IP or a DNS name) made with openssl. Works as
 * root (sessions run as nobody) and unprivileged.
 */
export function startProftpd(opts: {certName?: string; slowKiBps?: number; sameCaAs?: Proftpd} = {}): Promise<Proftpd> {
  const certName = opts.certName ?? '127.0.0.1'
  const key = `${certName}/${opts.slowKiBps ?? 2048}/${opts.sameCaAs?.caFile ?? ''}`
  let pending = running.get(key)
  if (!pending) {
    pending = launch(certName, opts.slowKiBps ?? 2048, opts.sameCaAs?.stateDir)
    running.set(key, pending)
    pending.catch(() => running.delete(key))
  }
  return pending
}

/** Stops every ProFTPD this process started. */
export async function stopAllProftpd(): Promise<void> {
  const all = [...running.values()]
  running.clear()
  await Promise.all(all.map(async (p) => (await p.catch(() => undefined))?.stop()))
}

async function launch(certName: string, slowKiBps: number, caDir?: string): Promise<Proftpd> {
  const stateDir = await mkdtemp(join(tmpdir(), 'shien-proftpd-'))
  await chmod(stateDir, 0o755) // sessions run as the FTP user and must reach their homes
  const root = process.getuid?.() === 0
  const ids = root ? {uid: 65534, gid: 65534} : {uid: process.getuid!(), gid: process.getgid!()}
  const pki = await makePki(stateDir, certName, caDir)
  const files = {passwd: join(stateDir, 'ftpd.passwd'), group: join(stateDir, 'ftpd.group'), homes: join(stateDir, 'homes')}
  await mkdir(files.homes, {mode: 0o755})
  let child: ResultPromise | undefined
  let port = 0
  for (let attempt = 0; attempt < 5 && !child; attempt++) {
    port = await closedPort()
    await writeFile(join(stateDir, 'proftpd.conf'), config({stateDir, port, root, slowKiBps, pki, files}))
    await writeAccounts(files, [], ids)
    const started = execa('proftpd', ['-n', '-c', join(stateDir, 'proftpd.conf')], {reject: false, all: true})
    if (await listening(port, started)) child = started
  }
  if (!child) throw new Error(`ProFTPD did not start: ${await readFile(join(stateDir, 'proftpd.log'), 'utf8').catch(() => '')}`)
  return handle({stateDir, port, pki, files, ids, child})
}

function handle(s: {stateDir: string; port: number; pki: Pki; files: AccountFiles; ids: Ids; child: ResultPromise}): Proftpd {
  return {
    host: '127.0.0.1',
    port: s.port,
    caFile: s.pki.caFile,
    caPem: s.pki.caPem,
    certFile: s.pki.certFile,
    keyFile: s.pki.keyFile,
    stateDir: s.stateDir,
    setAccounts: (accounts) => writeAccounts(s.files, accounts, s.ids),
    homeOf: (user) => join(s.files.homes, user),
    cutDataConnections: () => cutData(s.port),
    logs: async () =>
      (await Promise.all(['proftpd.log', 'tls.log', 'xfer.log'].map((f) => readFile(join(s.stateDir, f), 'utf8').catch(() => '')))).join('\n'),
    stop: async () => {
      s.child.kill('SIGTERM')
      await s.child
      await rm(s.stateDir, {recursive: true, force: true})
    },
  }
}

export interface Pki {
  caFile: string
  caPem: string
  certFile: string
  keyFile: string
}
interface AccountFiles {
  passwd: string
  group: string
  homes: string
}
interface Ids {
  uid: number
  gid: number
}

/** A CA (or the one in `caDir`, to sign a certificate it vouches for) and a server certificate. */
export async function makePki(dir: string, certName: string, caDir?: string): Promise<Pki> {
  const p = (f: string) => join(dir, f)
  const ossl = (args: string[]) => execa('openssl', args, {cwd: dir})
  if (caDir) await Promise.all(['ca.key', 'ca.crt'].map((f) => copyFile(join(caDir, f), p(f))))
  else await ossl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=shien test CA'])
  await ossl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', `/CN=${certName}`])
  const san = /^[0-9.]+$/.test(certName) ? `IP:${certName}` : `DNS:${certName}`
  await writeFile(p('server.ext'), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`)
  await ossl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'server.ext'])
  await chmod(p('server.key'), 0o600)
  return {caFile: p('ca.crt'), caPem: await readFile(p('ca.crt'), 'utf8'), certFile: p('server.crt'), keyFile: p('server.key')}
}

function config(c: {stateDir: string; port: number; root: boolean; slowKiBps: number; pki: Pki; files: AccountFiles}): string {
  const f = (name: string) => join(c.stateDir, name)
  return `# shien's test FTPS server: strict like Sakura Cloud's (TLS required on control and data).
ServerName "shien test FTPS"
ServerType standalone
Port ${c.port}
DefaultAddress 127.0.0.1
SocketBindTight on
UseIPv6 off
${c.root ? 'User nobody\nGroup nogroup' : ''}
PidFile ${f('proftpd.pid')}
ScoreboardFile ${f('proftpd.scoreboard')}
DelayTable none
WtmpLog off
UseReverseDNS off
SystemLog ${f('proftpd.log')}
TransferLog ${f('xfer.log')}
AuthOrder mod_auth_file.c
AuthUserFile ${c.files.passwd}
AuthGroupFile ${c.files.group}
RequireValidShell off
DefaultRoot ~
AllowOverwrite on
Umask 022
MaxInstances 40
TimeoutIdle 120
TransferRate STOR ${c.slowKiBps} group slow
ModulePath /usr/lib/proftpd
LoadModule mod_tls.c
TLSEngine on
TLSRequired on
TLSProtocol TLSv1.2 TLSv1.3
TLSECCertificateFile ${c.pki.certFile}
TLSECCertificateKeyFile ${c.pki.keyFile}
TLSVerifyClient off
TLSRenegotiate none
TLSLog ${f('tls.log')}
# No "TLSOptions NoSessionReuseRequired": a data connection must resume the control
# connection's TLS session, or ProFTPD refuses it.
`
}

const hashes = new Map<string, string>()

async function writeAccounts(files: AccountFiles, accounts: FtpAccount[], ids: Ids): Promise<void> {
  const lines: string[] = []
  for (const a of accounts) {
    let hash = hashes.get(a.password)
    // The password goes on stdin: never on a command line.
    if (!hash) hash = (await execa('openssl', ['passwd', '-6', '-stdin'], {input: a.password})).stdout.trim()
    hashes.set(a.password, hash)
    const home = join(files.homes, a.user)
    await mkdir(home, {recursive: true, mode: 0o755})
    await chown(home, ids.uid, ids.gid)
    lines.push(`${a.user}:${hash}:${ids.uid}:${ids.gid}::${home}:/bin/false`)
  }
  const slow = accounts.filter((a) => a.slow).map((a) => a.user)
  await atomicWrite(files.passwd, lines.join('\n') + '\n')
  await atomicWrite(files.group, `ftp:x:${ids.gid}:\nslow:x:65533:${slow.join(',')}\n`)
}

async function atomicWrite(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp`
  await writeFile(tmp, text, {mode: 0o600})
  // A session reading the file mid-write must see the old or the new accounts, never half.
  await rename(tmp, path)
}


async function listening(port: number, child: ResultPromise): Promise<boolean> {
  let exited = false
  void child.then(() => (exited = true))
  for (let i = 0; i < 100 && !exited; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = new Socket()
      socket.once('connect', () => (socket.destroy(), resolve(true)))
      socket.once('error', () => resolve(false))
      socket.connect(port, '127.0.0.1')
    })
    if (ok) return true
    await new Promise((r) => setTimeout(r, 100))
  }
  return false
}

async function cutData(controlPort: number): Promise<number> {
  const {stdout} = await execa('ss', ['-Htn', 'state', 'established'])
  // ProFTPD's side of a data connection: local 127.0.0.1, any port but the control port,
  // peer on loopback. (The control connection is left alone.)
  const ports = new Set<number>()
  for (const line of stdout.split('\n')) {
    const [local, peer] = line.trim().split(/\s+/).slice(2, 4)
    const lp = Number(local?.split(':').at(-1))
    if (!local?.startsWith('127.0.0.1:') || !peer || lp === controlPort) continue
    if (Number(peer.split(':').at(-1)) === controlPort) continue
    if (await ownedByProftpd(lp)) ports.add(lp)
  }
  for (const p of ports) await execa('ss', ['-K', '-tn', 'state', 'established', `( sport = :${p} )`])
  return ports.size
}

async function ownedByProftpd(port: number): Promise<boolean> {
  const {stdout} = await execa('ss', ['-Htnp', 'state', 'established', `( sport = :${port} )`])
  return stdout.includes('"proftpd"')
}
