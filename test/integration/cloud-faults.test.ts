import {createHash} from 'node:crypto'
import {mkdtemp, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {Client} from 'basic-ftp'
import {execa} from 'execa'
import {afterAll, beforeAll, beforeEach, describe, expect, it} from 'vitest'

import {type CliRun, runShien, startShien} from '../support/cli.js'
import {cloudTestEnv, type FakeArchive, type FakeSakura, startFakeSakura} from '../support/fake-sakura.js'
import {type Proftpd, startProftpd, stopAllProftpd} from '../support/proftpd.js'

// FTPS faults with the real ProFTPD: cut transfers, refused logins, a wrong certificate, Ctrl-C.
const creds = {token: 'tok-shien-faults', secret: `faults-secret-${process.pid}-${Date.now()}`}
let ftpd: Proftpd
let fake: FakeSakura
let dir: string
let image: string
const outputs: string[] = []

beforeAll(async () => {
  ftpd = await startProftpd({slowKiBps: 2048})
  fake = await startFakeSakura({ftpd, ...creds})
  dir = await mkdtemp(join(tmpdir(), 'shien-cloud-faults-'))
  image = join(dir, 'os101.img')
  await execa('sh', ['-c', 'head -c 16777216 /dev/urandom > "$1"', 'sh', image])
})

afterAll(async () => {
  await fake?.stop()
  await stopAllProftpd()
  if (dir) await rm(dir, {recursive: true, force: true})
})

beforeEach(async () => fake.reset())

const env = (extra: Record<string, string> = {}) => ({...cloudTestEnv(fake, ftpd, creds), ...extra})
const sha256 = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex')
const latest = () => [...fake.archives.values()].at(-1)!
const puts = () => fake.requests.filter((r) => r.method === 'PUT')

async function push(args: string[], extra: Record<string, string> = {}): Promise<CliRun> {
  const run = await runShien(['cloud', 'push', image, '--zone', 'is1a', '--json', ...args], {home: dir, env: env(extra)})
  outputs.push(run.stdout, run.stderr)
  return run
}

/** Waits until the newest archive's file on the FTP server has at least `bytes`. */
async function storedAtLeast(bytes: number, since: number): Promise<FakeArchive> {
  for (let i = 0; i < 400; i++) {
    const archive = latest()
    if (archive && archive.id >= since) {
      const home = ftpd.homeOf(`sac${archive.id}`)
      const [file] = await readdir(home).catch(() => [] as string[])
      if (file && (await stat(join(home, file))).size >= bytes) return archive
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error('the upload never started')
}

const nextId = () => (latest()?.id ?? 0) + 1

describe('shien cloud push against FTPS faults', () => {
  it('recovers from a data connection cut mid-transfer, with a fresh password, and stores every byte', async () => {
    fake.faults.slowFtp = true
    const since = nextId()
    const child = startShien(['cloud', 'push', image, '--zone', 'is1a', '--json'], {home: dir, env: env()})
    const archive = await storedAtLeast(1 << 20, since)
    const firstPassword = archive.ftp!.password
    fake.faults.slowFtp = false // the second attempt may run at full speed
    expect(await ftpd.cutDataConnections()).toBeGreaterThanOrEqual(1)
    const run = await child
    outputs.push(String(run.stdout), String(run.stderr))
    expect(run.exitCode, String(run.stderr)).toBe(0)
    const result = JSON.parse(String(run.stdout))
    expect(result.upload.attempts).toBe(2)
    expect(result.archive.availability).toBe('available')
    expect(puts().map((r) => r.body)).toEqual([{ChangePassword: true}])
    const home = ftpd.homeOf(`sac${archive.id}`)
    expect(await sha256(join(home, (await readdir(home))[0]))).toBe(await sha256(image))
    // The password of the broken attempt no longer logs in: it was really changed.
    expect(await loginCode(`sac${archive.id}`, firstPassword)).toBe(530)
  })

  it('gives up after a bounded number of refused FTP logins and deletes the archive', async () => {
    fake.faults.wrongFtpPassword = true
    const run = await push([])
    expect(run.exitCode).toBe(5)
    expect(run.json.error.code).toBe('CLOUD_UPLOAD_FAILED')
    expect(run.json.error.message).toMatch(/failed \(3 tries, each with a fresh FTP password\): the FTP server refused the login \(530 /)
    expect(run.json.error.message).toContain(`Archive ${latest().id} "os101" in is1a was deleted.`)
    expect(puts()).toHaveLength(2)
    expect(latest().deleted).toBe(true)
  })

  it('refuses an FTPS server whose certificate is for another host name, without retrying', async () => {
    // Signed by the CA shien trusts, but for ftp.wrong.example, while Sakura Cloud named 127.0.0.1.
    const wrong = await startProftpd({certName: 'ftp.wrong.example', sameCaAs: ftpd})
    fake.useFtpd(wrong)
    const run = await push([], {SHIEN_CLOUD_FTP_PORT: String(wrong.port)})
    expect(run.exitCode).toBe(4)
    expect(run.json.error.code).toBe('CLOUD_FTPS_TLS')
    expect(run.json.error.message).toMatch(/certificate was refused: .*IP: 127\.0\.0\.1 is not in the cert's list.*\(ERR_TLS_CERT_ALTNAME_INVALID\)/)
    expect(run.json.error.message).toContain('was deleted.')
    expect(puts()).toEqual([])
    expect(await readdir(wrong.homeOf(`sac${latest().id}`)).catch(() => [])).toEqual([])
    expect(await wrong.logs()).not.toMatch(/Transfer complete|STOR/)
  })

  it('on Ctrl-C during the upload deletes the archive and says so (exit 130)', async () => {
    fake.faults.slowFtp = true
    const since = nextId()
    const child = startShien(['cloud', 'push', image, '--zone', 'is1a', '--json'], {home: dir, env: env()})
    const archive = await storedAtLeast(512 << 10, since)
    child.kill('SIGINT')
    const run = await child
    outputs.push(String(run.stdout), String(run.stderr))
    expect(run.exitCode).toBe(130)
    const error = JSON.parse(String(run.stdout)).error
    expect(error.code).toBe('CLOUD_CANCELLED')
    expect(error.message).toBe(`Interrupted. Archive ${archive.id} "os101" in is1a was deleted.`)
    expect(archive.deleted).toBe(true)
    expect(fake.requests.at(-1)).toMatchObject({method: 'DELETE', path: `/archive/${archive.id}`, status: 200})
  })

  it('runs against a server that refuses data connections without TLS session reuse', async () => {
    // The same ProFTPD turns away a client that does not resume the session (curl --no-sessionid),
    // so every upload above really proved shien resumes it.
    await ftpd.setAccounts([{user: 'probe', password: 'probe-password'}])
    const netrc = join(dir, 'netrc')
    await writeFile(netrc, `machine 127.0.0.1 login probe password probe-password\n`, {mode: 0o600})
    const url = `ftp://127.0.0.1:${ftpd.port}/probe.img`
    const base = ['-sS', '--ssl-reqd', '--cacert', ftpd.caFile, '--netrc-file', netrc, '-T', image, url]
    const refused = await execa('curl', ['--no-sessionid', ...base], {reject: false})
    expect(refused.exitCode).not.toBe(0)
    expect(await ftpd.logs()).toMatch(/client did not reuse TLS session, rejecting data connection/)
    const accepted = await execa('curl', base, {reject: false})
    expect(accepted.exitCode, accepted.stderr).toBe(0)
  })

  it('never shows the API secret or an FTP password in any output or ProFTPD log', async () => {
    const text = outputs.join('\n') + (await ftpd.logs())
    expect(fake.issuedPasswords.length).toBeGreaterThanOrEqual(5)
    for (const secret of [creds.secret, ...fake.issuedPasswords]) expect(text).not.toContain(secret)
  })
})

async function loginCode(user: string, password: string): Promise<number> {
  const client = new Client(10_000)
  try {
    await client.access({host: '127.0.0.1', port: ftpd.port, user, password, secure: true, secureOptions: {ca: ftpd.caPem}})
    return 230
  } catch (error) {
    return (error as {code?: number}).code ?? -1
  } finally {
    client.close()
  }
}
