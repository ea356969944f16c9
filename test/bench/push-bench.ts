// npm run bench:push: shien's upload against OpenSSH scp, alternating in one run on the local
// blade, for a 1 GiB and a 4 GiB box. Prints the throughput ratio and shien's peak RSS.
import {execFileSync, spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, rmSync, statSync} from 'node:fs'
import {cpus, totalmem} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

const root = fileURLToPath(new URL('../../..', import.meta.url))
const laptop = '/var/lib/shien-blade/laptop'
const incoming = '/gfs2/shien/users/e195701/incoming'
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)

/** A box-shaped tar of incompressible bytes (the worst case for the wire), cached between runs. */
function benchBox(gib: number): string {
  const dir = join(root, '.cache', 'bench')
  const box = join(dir, `bench-${gib}g.box`)
  if (existsSync(box) && statSync(box).size > gib * 2 ** 30) return box
  mkdirSync(dir, {recursive: true})
  const disk = join(dir, 'box-disk001.vmdk')
  execFileSync('sh', ['-c', 'head -c "$1" /dev/urandom > "$2"', 'sh', String(gib * 2 ** 30), disk])
  execFileSync('tar', ['-cf', box, '-C', dir, 'box-disk001.vmdk'])
  rmSync(disk)
  return box
}

function shienOnce(box: string): {seconds: number; maxRssKiB: number} {
  const r = spawnSync('node', [join(root, 'dist/test/bench/upload-once.js'), box, 'bench', laptop], {encoding: 'utf8'})
  if (r.status !== 0) throw new Error(`shien upload failed: ${r.stderr}`)
  rmSync(join(incoming, 'bench.box'), {force: true})
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!)
}

function scpOnce(box: string): number {
  const t0 = performance.now()
  const r = spawnSync('scp', ['-q', '-F', join(laptop, '.ssh', 'config'), box, `blade:${incoming}/scp.box`], {encoding: 'utf8'})
  if (r.status !== 0) throw new Error(`scp failed: ${r.stderr}`)
  const seconds = (performance.now() - t0) / 1000
  rmSync(join(incoming, 'scp.box'), {force: true})
  return seconds
}

const mibps = (bytes: number, s: number) => bytes / 2 ** 20 / s
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

console.log(`machine: ${cpus().length} x ${cpus()[0]?.model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`)
for (const gib of [1, 4]) {
  const box = benchBox(gib)
  const bytes = statSync(box).size
  const shien: number[] = []
  const scp: number[] = []
  let rss = 0
  const n = gib === 1 ? rounds : 1
  for (let i = 0; i < n; i++) {
    const s = shienOnce(box)
    shien.push(s.seconds)
    rss = Math.max(rss, s.maxRssKiB)
    scp.push(scpOnce(box))
  }
  const ratio = mibps(bytes, median(shien)) / mibps(bytes, median(scp))
  console.log(
    `${gib} GiB box, ${n} round(s): shien ${mibps(bytes, median(shien)).toFixed(0)} MiB/s, scp ${mibps(bytes, median(scp)).toFixed(0)} MiB/s, ` +
      `ratio ${ratio.toFixed(2)}, shien peak RSS ${(rss / 1024).toFixed(0)} MiB`,
  )
}
