import {createHash} from 'node:crypto'
import {readdir, readFile, rm, stat} from 'node:fs/promises'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, beforeEach, describe, expect, it} from 'vitest'

import {runShien, startShien} from '../support/cli.js'
import {ensureClass, QUEUE_FILE, type QueueEntry} from '../support/class.js'
import {cloudTestEnv, type FakeSakura, startFakeSakura} from '../support/fake-sakura.js'
import {ensureLocalBlade, type LocalBlade} from '../support/local-blade.js'
import {type Proftpd, startProftpd, stopAllProftpd} from '../support/proftpd.js'

// shien cloud push SLOT: the laptop reaches the local blade over SSH; `shien blade cloud-push`
// runs there as the student, with the API key on stdin, against the fake API and ProFTPD.
const creds = {token: 'tok-shien-slot', secret: `slot-secret-${process.pid}-${Date.now()}`}
const SLOT = '09'
let blade: LocalBlade
let ftpd: Proftpd
let fake: FakeSakura
let slotImage: string
let raw: string
const outputs: string[] = []

beforeAll(async () => {
  blade = await ensureLocalBlade()
  ftpd = await startProftpd({slowKiBps: 2048})
  fake = await startFakeSakura({ftpd, ...creds})
  const images = join(blade.storageRoot, 'users', blade.account, 'images')
  slotImage = join(images, `${SLOT}.qcow2`)
  raw = join(blade.stateDir, `cloud-slot-${process.pid}.raw`)
  await execa('sh', ['-c', 'head -c 12582912 /dev/urandom > "$1" && truncate -s 24M "$1"', 'sh', raw])
  await execa('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, slotImage])
  await execa('chown', [`${blade.account}:`, slotImage])
}, 900_000)

afterAll(async () => {
  await fake?.stop()
  await stopAllProftpd()
  await Promise.all([slotImage, raw].filter(Boolean).map((f) => rm(f, {force: true})))
})

beforeEach(async () => fake.reset())

const sha256 = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex')
const args = (...more: string[]) => ['cloud', 'push', ...more, '--host', 'blade', '--zone', 'is1a', '--json']
const run = (a: string[]) => runShien(a, {home: blade.laptopHome, env: cloudTestEnv(fake, ftpd, creds)})
const incoming = () => readdir(join(blade.storageRoot, 'users', blade.account, 'incoming'))

/** Command lines of every process on this machine, with their owners. */
async function processes(): Promise<Array<{uid: number; cmdline: string}>> {
  const list = []
  for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
    const uid = await stat(`/proc/${pid}`).then((s) => s.uid, () => -1)
    if (cmdline) list.push({uid, cmdline: cmdline.replaceAll('\0', ' ')})
  }
  return list
}

/** Waits until a new archive's image is arriving on the FTP server; returns its ID. */
async function uploading(): Promise<number> {
  const before = new Set(fake.archives.keys())
  for (let i = 0; i < 600; i++) {
    const archive = [...fake.archives.values()].find((a) => !before.has(String(a.id)))
    const home = archive && ftpd.homeOf(`sac${archive.id}`)
    const [file] = home ? await readdir(home).catch(() => [] as string[]) : []
    if (archive && file && (await stat(join(home!, file))).size > 256 << 10) return archive.id
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error('the upload from the blade never started')
}

describe('shien cloud push SLOT, from the blade', () => {
  it('runs on the blade as the student, secrets on stdin only, and stores the converted image', async () => {
    fake.faults.slowFtp = true
    const started = uploading()
    const child = startShien(args(SLOT), {home: blade.laptopHome, env: cloudTestEnv(fake, ftpd, creds)})
    await started
    const procs = await processes()
    const uid = Number((await execa('id', ['-u', blade.account])).stdout)
    expect(procs.some((p) => p.uid === uid && p.cmdline.includes('blade cloud-push') && p.cmdline.includes(`--slot ${SLOT}`))).toBe(true)
    for (const p of procs) expect(p.cmdline).not.toContain(creds.secret)
    const result = await child
    outputs.push(String(result.stdout), String(result.stderr))
    expect(result.exitCode, String(result.stderr)).toBe(0)
    const json = JSON.parse(String(result.stdout))
    expect(json).toMatchObject({
      source: {kind: 'slot', slot: SLOT, host: 'blade'},
      archive: {name: `${blade.account}-${SLOT}`, zone: 'is1a', sizeGiB: 20, availability: 'available'},
      image: {path: slotImage, format: 'qcow2', virtualSize: 24 << 20, sentBytes: 24 << 20},
    })
    expect(fake.requests[0].body).toMatchObject({Archive: {Description: `Pushed by shien from slot ${SLOT} of ${blade.account} on blade`}})
    const home = ftpd.homeOf(`sac${json.archive.id}`)
    expect(await sha256(join(home, (await readdir(home))[0]))).toBe(await sha256(raw))
    expect((await incoming()).filter((f) => f.includes('shien-cloud'))).toEqual([])
  })

  it('on Ctrl-C, the blade deletes the archive and the laptop reports it (exit 130)', async () => {
    fake.faults.slowFtp = true
    const started = uploading()
    const child = startShien(args(SLOT), {home: blade.laptopHome, env: cloudTestEnv(fake, ftpd, creds)})
    const id = await started
    child.kill('SIGINT')
    const result = await child
    outputs.push(String(result.stdout), String(result.stderr))
    expect(result.exitCode).toBe(130)
    const error = JSON.parse(String(result.stdout)).error
    expect(error).toMatchObject({code: 'CLOUD_CANCELLED', message: `Interrupted. Archive ${id} "${blade.account}-${SLOT}" in is1a was deleted.`})
    expect(fake.archives.get(String(id))?.deleted).toBe(true)
    // Nothing is left running or lying around on the blade.
    expect((await processes()).filter((p) => p.cmdline.includes('blade cloud-push'))).toEqual([])
    expect((await incoming()).filter((f) => f.includes('shien-cloud'))).toEqual([])
  })

  it('when the laptop vanishes mid-upload (kill -9), the blade still deletes the archive', async () => {
    fake.faults.slowFtp = true
    const started = uploading()
    const child = startShien(args(SLOT), {home: blade.laptopHome, env: cloudTestEnv(fake, ftpd, creds)})
    const id = await started
    child.kill('SIGKILL')
    await child.catch(() => undefined)
    for (let i = 0; i < 200 && !fake.archives.get(String(id))?.deleted; i++) await new Promise((r) => setTimeout(r, 50))
    expect(fake.archives.get(String(id))?.deleted).toBe(true)
    for (let i = 0; i < 100 && (await processes()).some((p) => p.cmdline.includes('blade cloud-push')); i++) {
      await new Promise((r) => setTimeout(r, 50))
    }
    expect((await processes()).filter((p) => p.cmdline.includes('blade cloud-push'))).toEqual([])
    expect((await incoming()).filter((f) => f.includes('shien-cloud'))).toEqual([])
  })

  it('converts only once the blade\'s push queue admits it, and leaves the queue with the push', async () => {
    // Two other students hold both places of the local blade's queue (bound 2), through the sudo rule.
    const others = await ensureClass(2)
    const holders = others.map(({account}) => {
      const proc = execa('runuser', ['-u', account, '--', 'sudo', '-n', '/usr/local/bin/ie-virsh', 'admit', '--step', 'harden', '--slot', '01'], {
        reject: false, stdin: 'pipe', stdout: 'pipe', buffer: false,
      })
      const admitted = new Promise<void>((resolve, reject) => {
        proc.stdout!.on('data', (d: Buffer) => d.toString().includes('"admitted"') && resolve())
        void proc.then((r) => reject(new Error(`${account}'s place: exit ${String(r.exitCode)}`)))
      })
      return {proc, admitted}
    })
    try {
      await Promise.all(holders.map((h) => h.admitted))
      const archivesBefore = fake.archives.size
      const child = startShien(args(SLOT).filter((a) => a !== '--json'), {home: blade.laptopHome, env: cloudTestEnv(fake, ftpd, creds)})
      let stderr = ''
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
      const uid = Number((await execa('id', ['-u', blade.account])).stdout)
      const entries = async () => (JSON.parse(await readFile(QUEUE_FILE, 'utf8')) as {entries: QueueEntry[]}).entries
      let mine: QueueEntry | undefined
      for (let i = 0; i < 600 && !mine; i++) {
        mine = (await entries()).find((e) => e.uid === uid)
        if (!mine) await new Promise((r) => setTimeout(r, 50))
      }
      expect(mine).toMatchObject({step: 'convert', state: 'waiting'})
      await new Promise((r) => setTimeout(r, 1500))
      // Still waiting: nothing converted, nothing asked of the API.
      expect((await entries()).find((e) => e.uid === uid)).toMatchObject({state: 'waiting'})
      expect(fake.requests).toEqual([])
      expect((await incoming()).filter((f) => f.includes('shien-cloud'))).toEqual([])
      holders[0].proc.stdin!.end()
      const result = await child
      outputs.push(String(result.stdout), stderr)
      expect(result.exitCode, stderr).toBe(0)
      expect(stderr).toMatch(/waiting for the blade: next, 2 of 2 running \(\d+s\)/)
      expect(stderr).toMatch(/waited \d+s for the blade/)
      expect((await entries()).filter((e) => e.uid === uid)).toEqual([])
      expect(fake.archives.size).toBe(archivesBefore + 1)
    } finally {
      for (const h of holders) h.proc.stdin!.end()
      await Promise.all(holders.map((h) => h.proc))
    }
  })

  it('refuses a slot without an image, before any API call', async () => {
    const result = await run(args('08'))
    outputs.push(result.stdout, result.stderr)
    expect(result.exitCode).toBe(3)
    expect(result.json.error.code).toBe('CLOUD_NO_IMAGE')
    expect(result.json.error.message).toMatch(/Slot 08 has no image/)
    expect(fake.requests).toEqual([])
  })

  it('never shows the API secret or an FTP password in any output', () => {
    const text = outputs.join('\n')
    expect(fake.issuedPasswords.length).toBeGreaterThanOrEqual(2)
    for (const secret of [creds.secret, ...fake.issuedPasswords]) expect(text).not.toContain(secret)
  })
})
