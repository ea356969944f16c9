// npm run bench:cloud: the same 1 GiB raw image sent to the local ProFTPD (TLS required, session
// reuse required) by `shien cloud push` and by `curl --ssl-reqd -T`, alternating in one run.
// Prints the throughput ratio and shien's peak RSS. Needs proftpd-core, proftpd-mod-crypto,
// curl and openssl (scripts/deps.d/cloud.list) and a build (npm run build).
import {execFileSync, spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {cpus, tmpdir, totalmem} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {execa} from 'execa'

import {Secret} from '../../src/cloud/secret.js'
import {SakuraArchiveClient} from '../../src/cloud/sakura-client.js'
import {resolveSettings} from '../../src/cloud/settings.js'
import {cloudTestEnv, startFakeSakura} from '../support/fake-sakura.js'
import {startProftpd, stopAllProftpd} from '../support/proftpd.js'

const root = fileURLToPath(new URL('../../..', import.meta.url))
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const creds = {token: 'bench-token', secret: `bench-secret-${process.pid}`}

/** Incompressible bytes (the worst case for the wire), cached between runs. */
function benchImage(): string {
  const dir = join(root, '.cache', 'bench')
  const image = join(dir, 'cloud-1g.img')
  if (existsSync(image) && statSync(image).size === 2 ** 30) return image
  mkdirSync(dir, {recursive: true})
  execFileSync('sh', ['-c', 'head -c 1073741824 /dev/urandom > "$1"', 'sh', image])
  return image
}

/** One `shien cloud push` in its own process: the upload step's time and the process's peak RSS. */
async function child(image: string): Promise<void> {
  const {run} = await import('@oclif/core')
  const result = (await run(['cloud', 'push', image, '--zone', 'is1a', '--json'], root)) as {upload: {ms: number}; image: {sentBytes: number}; archive: {id: string}}
  process.stdout.write(`\n${JSON.stringify({ms: result.upload.ms, bytes: result.image.sentBytes, id: result.archive.id, maxRssKiB: process.resourceUsage().maxRSS})}\n`)
}

async function main(): Promise<void> {
  const image = benchImage()
  const ftpd = await startProftpd()
  const fake = await startFakeSakura({ftpd, ...creds})
  const env = {...process.env, ...cloudTestEnv(fake, ftpd, creds)}
  const settings = resolveSettings(env)
  const api = new SakuraArchiveClient({zone: 'is1a', credentials: {token: creds.token, secret: new Secret(creds.secret), origin: 'bench'}, settings})
  const work = mkdtempSync(join(tmpdir(), 'cloud-bench-'))
  const shien: number[] = []
  const curl: number[] = []
  let rss = 0
  try {
    for (let i = 0; i < rounds; i++) {
      const s = await shienOnce(image, env)
      await api.delete(s.id)
      shien.push(s.mibps)
      rss = Math.max(rss, s.maxRssKiB)
      curl.push(await curlOnce(image, api, ftpd.port, ftpd.caFile, work))
      console.log(`round ${i + 1}: shien ${s.mibps.toFixed(0)} MiB/s, curl ${curl.at(-1)!.toFixed(0)} MiB/s`)
    }
  } finally {
    rmSync(work, {recursive: true, force: true})
    await fake.stop()
    await stopAllProftpd()
  }
  const ratio = median(shien) / median(curl)
  console.log(`machine: ${cpus().length} x ${cpus()[0]?.model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}, loopback`)
  console.log(
    `1 GiB raw image, ${rounds} round(s) each, alternating: shien ${median(shien).toFixed(0)} MiB/s, curl ${median(curl).toFixed(0)} MiB/s (medians), ` +
      `ratio ${ratio.toFixed(2)}, shien peak RSS ${(rss / 1024).toFixed(0)} MiB`,
  )
}

async function shienOnce(image: string, env: NodeJS.ProcessEnv): Promise<{mibps: number; id: string; maxRssKiB: number}> {
  // Not spawnSync: the fake API answers from this process's event loop.
  const r = await execa('node', [fileURLToPath(import.meta.url), 'child', image], {env, reject: false})
  if (r.exitCode !== 0) throw new Error(`shien cloud push failed: ${r.stdout}\n${r.stderr}`)
  const last = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {ms: number; bytes: number; id: string; maxRssKiB: number}
  return {mibps: last.bytes / 2 ** 20 / (last.ms / 1000), id: last.id, maxRssKiB: last.maxRssKiB}
}

/** The thesis's way: create the archive, then curl -T with the FTP account it names. */
async function curlOnce(image: string, api: SakuraArchiveClient, port: number, caFile: string, work: string): Promise<number> {
  const {archive, ftp} = await api.createBlank({name: 'curl', description: 'bench', tags: [], sizeMB: 20480})
  const netrc = join(work, 'netrc')
  // The password goes in a netrc file, not on curl's command line.
  writeFileSync(netrc, `machine ${ftp.hostName} login ${ftp.user} password ${ftp.password.reveal()}\n`, {mode: 0o600})
  const r = spawnSync('curl', ['-sS', '--ssl-reqd', '--cacert', caFile, '--netrc-file', netrc, '-T', image, `ftp://${ftp.hostName}:${port}/curl.img`, '-w', '%{time_total}'], {encoding: 'utf8'})
  rmSync(netrc)
  await api.delete(archive.id)
  if (r.status !== 0) throw new Error(`curl failed: ${r.stderr}`)
  return 2 ** 30 / 2 ** 20 / Number(r.stdout.trim())
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

if (process.argv[2] === 'child') await child(process.argv[3])
else await main()
