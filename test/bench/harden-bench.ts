// npm run bench:harden: hardenImage against one bare appliance launch of the same image, with the
// same appliance settings (push.applianceMemMiB, the environment's libguestfs backend), on the
// cached test box and on the Vagrant-like guest of test/integration/harden.test.ts. Each round
// runs a bare launch and a harden, in turns (the order swaps every round, so a drift of the
// machine's load does not favour one), each on a fresh copy of the image; the figures are medians
// over BENCH_ROUNDS rounds (default 3). The bare launch is what any harden must pay: guestfish
// started, the drive added, the appliance booted, shut down and exited.
// Besides wall time, each run's CPU time (user + system of guestfish, the appliance's qemu and
// their helpers, all reaped children of this process) is printed: under TCG the appliance is CPU
// bound, so on a shared machine CPU time is the steadier figure of the two.
import {execFileSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {mkdtemp, readdir, rm} from 'node:fs/promises'
import {cpus, loadavg, tmpdir, totalmem} from 'node:os'
import {join} from 'node:path'

import {pushSettings} from '../../src/config/blade-config.js'
import {hardenImage} from '../../src/harden/harden-image.js'
import {GuestfishSession} from '../../src/harden/guestfish.js'
import {buildGuestImage, makeKeyPair, vagrantBox} from '../support/guest-image.js'
import {convertForPush, testBoxVmdk} from './cached-box.js'

const MEM_MIB = pushSettings({}).applianceMemMiB

interface Run {
  /** Wall time, seconds. */
  wall: number
  /** CPU time of the reaped children, seconds. */
  cpu: number
}

interface Bare extends Run {
  boot: number
  shutdown: number
}

/** User + system time of this process's reaped children (cutime + cstime of /proc/self/stat), seconds. */
function childrenCpu(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').replace(/^.*\) /, '').split(' ')
  // Fields 16 and 17 of stat(5), counted from the state (field 3) here; clock ticks of 1/100 s.
  return (Number(fields[13]) + Number(fields[14])) / 100
}

async function timed<T>(work: () => Promise<T>): Promise<Run & {value: T}> {
  const [t0, c0] = [performance.now(), childrenCpu()]
  const value = await work()
  return {wall: (performance.now() - t0) / 1000, cpu: childrenCpu() - c0, value}
}

/** guestfish started, the drive added, `run`, then `shutdown` and exit, with the boot and the end apart. */
async function bareLaunch(image: string): Promise<Bare> {
  const run = await timed(async () => {
    const g = await GuestfishSession.start({memMiB: MEM_MIB})
    try {
      await g.addDrive(image, {format: 'qcow2', readonly: false})
      const t1 = performance.now()
      await g.launch()
      const t2 = performance.now()
      await g.close()
      return {boot: (t2 - t1) / 1000, shutdown: (performance.now() - t2) / 1000}
    } catch (error) {
      await g.kill()
      throw error
    }
  })
  return {wall: run.wall, cpu: run.cpu, ...run.value}
}

async function harden(image: string, key: string): Promise<Run> {
  return timed(() => hardenImage(image, {publicKey: key, applianceMemMiB: MEM_MIB, signal: AbortSignal.timeout(300_000)}))
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const s = (x: number) => `${x.toFixed(1)} s`

async function bench(name: string, image: string, work: string, key: string, rounds: number): Promise<void> {
  const bare: Bare[] = []
  const hardened: Run[] = []
  for (let round = 0; round < rounds; round++) {
    const copy = join(work, `${name}-${round}.qcow2`)
    const fresh = () => execFileSync('cp', ['--sparse=always', image, copy])
    const steps = [
      async () => { fresh(); bare.push(await bareLaunch(copy)) },
      async () => { fresh(); hardened.push(await harden(copy, key)) },
    ]
    for (const step of round % 2 === 0 ? steps : steps.reverse()) await step()
    await rm(copy, {force: true})
  }
  const of = (runs: Run[], key: 'wall' | 'cpu') => median(runs.map((r) => r[key]))
  const [h, b] = [of(hardened, 'wall'), of(bare, 'wall')]
  console.log(`${name}: harden ${s(h)}, bare launch ${s(b)}: ${(h / b).toFixed(2)}x`)
  console.log(`  wall: harden ${hardened.map((r) => s(r.wall)).join(' / ')}; bare ${bare.map((r) => s(r.wall)).join(' / ')} `
    + `(boot ${s(median(bare.map((x) => x.boot)))}, shutdown and exit ${s(median(bare.map((x) => x.shutdown)))})`)
  // Each round's bare launch and harden ran next to each other, under much the same load.
  const paired = hardened.map((r, i) => r.wall / bare[i].wall)
  console.log(`  per round: ${paired.map((r) => r.toFixed(2)).join(' / ')}x (median ${median(paired).toFixed(2)}x)`)
  console.log(`  cpu: harden ${s(of(hardened, 'cpu'))}, bare launch ${s(of(bare, 'cpu'))}: ${(of(hardened, 'cpu') / of(bare, 'cpu')).toFixed(2)}x; `
    + `load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`)
}

async function main(): Promise<void> {
  console.log(`machine: ${cpus().length} x ${cpus()[0]?.model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}, `
    + `${execFileSync('guestfish', ['--version'], {encoding: 'utf8'}).trim()}, LIBGUESTFS_BACKEND_SETTINGS=${process.env.LIBGUESTFS_BACKEND_SETTINGS ?? ''}, appliance ${MEM_MIB} MiB`)
  const work = await mkdtemp('/var/tmp/shien-harden-bench-')
  const keyDirs = async () => (await readdir(tmpdir())).filter((n) => n.startsWith('shien-test-key-'))
  const before = new Set(await keyDirs())
  try {
    const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
    const key = (await makeKeyPair('ed25519', 'bench@laptop')).publicLine
    const testBox = join(work, 'test-box.qcow2')
    await convertForPush(await testBoxVmdk(work), testBox)
    const vagrantLike = join(work, 'vagrant-like.qcow2')
    const box = await vagrantBox({extraPasswd: ['alice:x:1001:1001::/home/alice:/bin/bash']})
    await buildGuestImage(vagrantLike, [
      ...box.entries,
      {type: 'dir', path: '/home/alice/.ssh', mode: 0o700, uid: 1001, gid: 1001},
      {type: 'symlink', path: '/home/alice/.ssh/authorized_keys', target: '/etc/shadow'},
      {type: 'hardlink', path: '/home/alice/.ssh/authorized_keys2', target: '/etc/shadow'},
    ])
    await bench('test box', testBox, work, key, rounds)
    await bench('Vagrant-like', vagrantLike, work, key, rounds)
  } finally {
    await rm(work, {recursive: true, force: true})
    for (const dir of await keyDirs()) if (!before.has(dir)) await rm(join(tmpdir(), dir), {recursive: true, force: true})
  }
}

await main()
