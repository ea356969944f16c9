import {createHash} from 'node:crypto'
import {mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, beforeEach, describe, expect, it} from 'vitest'

import {type CliRun, runShien} from '../support/cli.js'
import {cloudTestEnv, type FakeSakura, startFakeSakura} from '../support/fake-sakura.js'
import {type Proftpd, startProftpd, stopAllProftpd} from '../support/proftpd.js'

// shien cloud push with a local image: the real CLI, the fake API, a real ProFTPD over TLS.
const creds = {token: 'tok-shien-test', secret: `api-secret-${process.pid}-${Date.now()}`}
let ftpd: Proftpd
let fake: FakeSakura
let dir: string
const outputs: string[] = []

beforeAll(async () => {
  ftpd = await startProftpd()
  fake = await startFakeSakura({ftpd, ...creds})
  dir = await mkdtemp(join(tmpdir(), 'shien-cloud-'))
})

afterAll(async () => {
  await fake?.stop()
  await stopAllProftpd()
  if (dir) await rm(dir, {recursive: true, force: true})
})

beforeEach(async () => fake.reset())

const sha256 = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex')

/** A raw disk with data at both ends and a hole in the middle. */
async function rawImage(name: string, mib: number): Promise<string> {
  const path = join(dir, name)
  await execa('sh', ['-c', 'head -c 4194304 /dev/urandom > "$1" && truncate -s "$2"M "$1" && head -c 1048576 /dev/urandom >> "$1"', 'sh', path, String(mib)])
  return path
}

async function push(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const run = await runShien(['cloud', 'push', ...args], {home: dir, env: {...cloudTestEnv(fake, ftpd, creds), ...env}})
  outputs.push(run.stdout, run.stderr)
  return run
}

async function stored(archiveId: number | string): Promise<string> {
  const home = ftpd.homeOf(`sac${archiveId}`)
  const [file] = await readdir(home)
  return join(home, file)
}

const created = () => fake.requests.filter((r) => r.method === 'POST' && r.status === 201)
const calls = () => fake.requests.map((r) => `${r.method} ${r.path.replace(/[0-9]{6,}/, 'ID')} ${r.status}`)

describe('shien cloud push FILE', () => {
  it('converts a qcow2 to raw, creates the archive, sends it over FTPS and waits until it is available', async () => {
    const raw = await rawImage('disk.raw', 24)
    const qcow2 = join(dir, 'os101.qcow2')
    await execa('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, qcow2])
    const run = await push([qcow2, '--zone', 'is1a', '--json'])
    expect(run.exitCode, run.stderr).toBe(0)
    expect(run.json).toMatchObject({
      archive: {name: 'os101', zone: 'is1a', sizeGiB: 20, sizeMB: 20480, availability: 'available'},
      image: {format: 'qcow2', virtualSize: (24 + 1) * 2 ** 20, sentBytes: (24 + 1) * 2 ** 20},
      upload: {attempts: 1, reply: expect.stringMatching(/^226 /)},
      source: {kind: 'file', path: qcow2},
    })
    expect(calls()).toEqual(['POST /archive 201', 'DELETE /archive/ID/ftp 200', 'GET /archive/ID 200', 'GET /archive/ID 200'])
    const create = fake.requests[0]
    expect(create.body).toEqual({Archive: {Name: 'os101', Description: 'Pushed by shien from os101.qcow2', Tags: ['shien'], SizeMB: 20480}})
    for (const r of fake.requests) {
      expect(r.headers).toEqual({contentType: 'application/json', requestedWith: 'XMLHttpRequest', bigintAsInt: '1'})
    }
    expect(await sha256(await stored(run.json.archive.id))).toBe(await sha256(raw))
    // The sparse raw made for the upload is gone, and the data connection resumed the TLS session.
    expect((await readdir(dir)).filter((f) => f.includes('shien-cloud'))).toEqual([])
    expect(await ftpd.logs()).toMatch(/client reused TLS session for data connection/)
  })

  it('sends a raw image as it is, and tells what it did on stderr without --json', async () => {
    const raw = await rawImage('web.img', 8)
    const run = await push([raw, '--zone', 'tk1a', '--name', 'web-e195701'])
    expect(run.exitCode, run.stderr).toBe(0)
    expect(run.stdout).toMatch(/^Archive 11330\d+ "web-e195701" is available in tk1a \(20 GiB\)\.\nSent 0\.01 GiB in/)
    expect(run.stderr).toMatch(/created in tk1a; sending the image over FTPS/)
    const archive = [...fake.archives.values()].at(-1)!
    expect(archive).toMatchObject({zone: 'tk1a', name: 'web-e195701', availability: 'available'})
    expect(await sha256(await stored(archive.id))).toBe(await sha256(raw))
  })

  it('retries a 503 and then succeeds', async () => {
    fake.failNext({method: 'POST', path: /^\/archive$/}, 503, 1)
    const run = await push([await rawImage('a.img', 2), '--zone', 'is1a'])
    expect(run.exitCode, run.stderr).toBe(0)
    expect(calls().slice(0, 2)).toEqual(['POST /archive 503', 'POST /archive 201'])
    expect(run.stderr).toMatch(/Sakura Cloud answered 503 to POST \/archive; trying again in/)
    expect(fake.archives.size).toBeGreaterThan(0)
  })

  it('rides out a 423 storm with growing waits, never more than 5 requests a second', async () => {
    fake.failNext({method: 'GET', path: /^\/archive\/\d+$/}, 423, 9)
    const run = await push([await rawImage('b.img', 2), '--zone', 'is1a', '--json'])
    expect(run.exitCode, run.stderr).toBe(0)
    const locked = fake.requests.filter((r) => r.status === 423)
    expect(locked).toHaveLength(9)
    const gaps = locked.slice(1).map((r, i) => r.at - locked[i].at)
    // Backoff base 10 ms here: 10, 20, 40, ... (the rate limit stretches the short ones).
    expect(gaps[5]).toBeGreaterThanOrEqual(320 - 5)
    expect(gaps[6]).toBeGreaterThanOrEqual(640 - 5)
    const at = fake.requests.map((r) => r.at)
    for (let i = 5; i < at.length; i++) expect(at[i] - at[i - 5]).toBeGreaterThan(950)
  })

  it('gives up on a 423 storm after 10 tries, before an archive exists', async () => {
    fake.failNext({method: 'POST', path: /^\/archive$/}, 423, 50)
    const run = await push([await rawImage('c.img', 2), '--zone', 'is1a', '--json'])
    expect(run.exitCode).toBe(5)
    expect(run.json.error.code).toBe('CLOUD_BUSY')
    expect(run.json.error.message).toMatch(/answered 423 resource_is_locked to POST \/archive: busy, try later \(still busy after 10 tries\)/)
    expect(fake.requests).toHaveLength(10)
    expect(created()).toEqual([])
  })

  it('shows a plain-text error body as it is', async () => {
    fake.failNext({method: 'POST', path: /^\/archive$/}, 502, 1, '<html><body>Bad Gateway</body></html>')
    const run = await push([await rawImage('d.img', 2), '--zone', 'is1a', '--json'])
    expect(run.exitCode).toBe(5)
    expect(run.json.error).toMatchObject({code: 'CLOUD_API', message: 'Sakura Cloud (is1a) answered 502 to POST /archive: Bad Gateway.'})
  })

  it('refuses an image larger than 1024 GiB before any API call', async () => {
    const huge = join(dir, 'huge.qcow2')
    await execa('qemu-img', ['create', '-f', 'qcow2', huge, '1100G'])
    const run = await push([huge, '--zone', 'is1a', '--json'])
    expect(run.exitCode).toBe(3)
    expect(run.json.error.code).toBe('CLOUD_IMAGE_TOO_LARGE')
    expect(run.json.error.message).toMatch(/1100\.0 GiB disk; a Sakura Cloud archive holds at most 1024 GiB/)
    expect(fake.requests).toEqual([])
  })

  it('stops at "failed" at once, deletes the archive and says so', async () => {
    fake.faults.availability = 'failed'
    const t0 = performance.now()
    const run = await push([await rawImage('e.img', 2), '--zone', 'is1a', '--json', '--timeout', '600'])
    expect(performance.now() - t0).toBeLessThan(30_000)
    expect(run.exitCode).toBe(5)
    const archive = [...fake.archives.values()].at(-1)!
    expect(run.json.error.code).toBe('CLOUD_ARCHIVE_FAILED')
    expect(run.json.error.message).toContain(`Archive ${archive.id} "e" in is1a was deleted.`)
    expect(archive.deleted).toBe(true)
    expect(calls().at(-1)).toBe('DELETE /archive/ID 200')
  })

  it('times out on an archive that never becomes available, and --keep-on-failure leaves it', async () => {
    fake.faults.availability = 'stuck'
    const run = await push([await rawImage('f.img', 2), '--zone', 'is1a', '--json', '--timeout', '1', '--keep-on-failure'])
    expect(run.exitCode).toBe(5)
    const archive = [...fake.archives.values()].at(-1)!
    expect(run.json.error.code).toBe('CLOUD_WAIT_TIMEOUT')
    expect(run.json.error.message).toContain(`Archive ${archive.id} "f" in is1a was left as it is (--keep-on-failure).`)
    expect(archive.deleted).toBe(false)
    expect(calls()).not.toContain('DELETE /archive/ID 200')
  })

  it('reports wrong API credentials with the API\'s code and message, and creates nothing', async () => {
    const run = await push([await rawImage('g.img', 2), '--zone', 'is1a', '--json'], {SAKURACLOUD_ACCESS_TOKEN_SECRET: 'not-the-secret'})
    expect(run.exitCode).toBe(6)
    expect(run.json.error.code).toBe('CLOUD_AUTH')
    expect(run.json.error.message).toMatch(/answered 401 unauthorized to POST \/archive: 認証に失敗しました。/)
    expect(created()).toEqual([])
    expect(run.stdout + run.stderr).not.toContain('not-the-secret')
  })

  it('takes the API key from a usacloud profile only its owner can read', async () => {
    const profileDir = join(dir, 'usacloud')
    await execa('mkdir', ['-p', join(profileDir, '.usacloud', 'os101')])
    const file = join(profileDir, '.usacloud', 'os101', 'config.json')
    await writeFile(file, JSON.stringify({AccessToken: creds.token, AccessTokenSecret: creds.secret, Zone: 'is1b'}), {mode: 0o644})
    await writeFile(join(profileDir, '.usacloud', 'current'), 'os101\n')
    const env = {SAKURACLOUD_ACCESS_TOKEN: '', SAKURACLOUD_ACCESS_TOKEN_SECRET: '', SAKURACLOUD_PROFILE_DIR: profileDir}
    const image = await rawImage('h.img', 2)
    const refused = await push([image, '--json'], env)
    expect(refused.exitCode).toBe(6)
    expect(refused.json.error).toMatchObject({code: 'CLOUD_PROFILE_UNSAFE', suggestions: [`chmod 600 ${file}`, expect.any(String)]})
    expect(fake.requests).toEqual([])
    await execa('chmod', ['600', file])
    const run = await push([image, '--json'], env)
    expect(run.exitCode, run.stderr).toBe(0)
    expect(run.json.archive.zone).toBe('is1b')
  })

  it('never shows the API secret or an FTP password in any output', () => {
    const text = outputs.join('\n')
    expect(text.length).toBeGreaterThan(1000)
    expect(fake.issuedPasswords.length).toBeGreaterThan(5)
    for (const secret of [creds.secret, ...fake.issuedPasswords]) expect(text).not.toContain(secret)
  })
})
