// npm run bench:delta: a delta push against a full push of the same student box, side by side
// in one run on the local blade, over loopback and over a link shaped to 100 Mbit/s.
//
// The course base is the test box with its disk grown to 2 GiB (and, for the laptop's memory
// only, to 8 GiB), published with shien box publish; the student's box is that disk with about
// 5% of its blocks changed through libguestfs (test/support/derived-box.ts), exported as vagrant
// package writes it. Each push is `shien push BOX --json` as the student's laptop runs it (no
// packaging), full (--full) and delta (--base). The 100 Mbit/s link is the loopback of a network
// namespace the bench creates, shaped with tc (tbf), with a bridge inside it carrying the
// connection to the blade's sshd over a Unix socket: nothing leaves this machine.
//
// Measured per push: bytes on the wire (the upload's bytes sent), wall time (packaging excluded,
// as the box is given), the time of the upload and convert (or apply) stages alone, the new
// image's actual size on the blade against what its top layer holds (the changed blocks and what
// hardening wrote), and the laptop process's peak RSS.
import {spawn, spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {connect, createServer, type Server} from 'node:net'
import {cpus, totalmem} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {execa} from 'execa'

import {REPO_ROOT, SHIEN_BIN} from '../support/cli.js'
import {changeGuest, diskOf, repackBox, studentChanges, unpackBox} from '../support/derived-box.js'
import {ensureLocalBlade, type LocalBlade} from '../support/local-blade.js'
import {testBoxPath} from '../support/test-box.js'
import {clearSlot} from '../support/virsh.js'

const SLOT = '02'
const NAMESPACE = `shien-bench-${process.pid}`
const RECIPE = 'delta-bench-1'
const BRIDGE = fileURLToPath(new URL('./netns-bridge.js', import.meta.url))
const MAX_RSS = join(REPO_ROOT, 'test/bench/max-rss.cjs')
const MIB = 2 ** 20
const GIB = 2 ** 30

interface Boxes {
  base: string
  student: string
  name: string
  version: string
}

interface Push {
  sent: number
  seconds: number
  /** Upload and convert (or apply-delta): what the wire and the disk format decide. */
  transferSeconds: number
  rssMiB: number
  changedBlocks?: number
  imageActual: number
  /** Bytes the image's top layer holds (for a full push, all of its data). */
  topAllocated: number
  timings: Record<string, number>
}

function run(cmd: string, args: string[], opts: {input?: string} = {}): string {
  const r = spawnSync(cmd, args, {encoding: 'utf8', input: opts.input})
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`)
  return r.stdout
}

/** The base and student boxes for one disk size, built once and kept in .cache/bench/delta. */
async function boxesFor(gib: number, testBox: string): Promise<Boxes> {
  const dir = join(REPO_ROOT, '.cache', 'bench', 'delta', `${RECIPE}-${statSync(testBox).size}-${gib}g`)
  const out = {base: join(dir, 'base.box'), student: join(dir, 'student.box'), name: `bench/delta${gib}g`, version: '1.0.0'}
  if (existsSync(join(dir, 'done'))) return out
  rmSync(dir, {recursive: true, force: true})
  mkdirSync(dir, {recursive: true})
  const unpacked = await unpackBox(testBox, join(dir, 'unpacked'))
  const disk = await diskOf(unpacked, join(dir, 'disk.qcow2'))
  run('qemu-img', ['resize', '-f', 'qcow2', disk, `${gib}G`])
  await repackBox(unpacked, disk, out.base)
  const data = join(dir, 'data.bin')
  run('sh', ['-c', `head -c ${14 * MIB} /dev/urandom > "$1"`, 'sh', data])
  await changeGuest(disk, studentChanges(data))
  await repackBox(unpacked, disk, out.student)
  for (const f of ['unpacked', 'disk.qcow2', 'data.bin']) rmSync(join(dir, f), {recursive: true, force: true})
  writeFileSync(join(dir, 'done'), '')
  return out
}

function publish(blade: LocalBlade, boxes: Boxes): void {
  const r = spawnSync('node', [SHIEN_BIN, 'box', 'publish', boxes.base, '--name', boxes.name, '--version', boxes.version,
    '--to', join(blade.storageRoot, 'boxes'), '--force', '--json'], {encoding: 'utf8', env: {...process.env, HOME: blade.laptopHome}})
  if (r.status !== 0) throw new Error(`publishing ${boxes.name} failed: ${r.stdout}${r.stderr}`)
}

/** `shien push` as the laptop runs it, inside the namespace when one is given. */
async function pushOnce(blade: LocalBlade, boxes: Boxes, mode: 'full' | 'delta', namespace?: string): Promise<Push> {
  // Every push starts from an empty slot, as a student's first push of the term does.
  await clearSlot(blade.account, SLOT)
  const rssFile = join(REPO_ROOT, '.cache', 'bench', 'delta', `rss-${process.pid}`)
  rmSync(rssFile, {force: true})
  const args = [SHIEN_BIN, 'push', boxes.student, '--host', 'blade', '--slot', SLOT, '--name', 'bench', '--json',
    ...(mode === 'full' ? ['--full'] : ['--base', `${boxes.name}@${boxes.version}`])]
  const argv = namespace ? ['ip', 'netns', 'exec', namespace, 'node', '-r', MAX_RSS, ...args] : ['node', '-r', MAX_RSS, ...args]
  const t0 = performance.now()
  // Not spawnSync: the bridge's outer end runs in this process and must keep answering.
  const r = await execa(argv[0], argv.slice(1), {
    cwd: blade.laptopHome, reject: false, stdin: 'ignore',
    env: {...process.env, HOME: blade.laptopHome, XDG_CONFIG_HOME: join(blade.laptopHome, '.config'), SSH_AUTH_SOCK: '', SHIEN_BENCH_RSS_FILE: rssFile},
  })
  const seconds = (performance.now() - t0) / 1000
  if (r.exitCode !== 0) throw new Error(`shien push (${mode}) failed (${r.exitCode}): ${r.stdout}${r.stderr}`)
  const result = JSON.parse(r.stdout) as {
    box: {sent: number}
    delta: {used: boolean; changedBlocks?: number; reason?: string}
    timings: {stage: string; ms: number}[]
  }
  if ((mode === 'delta') !== result.delta.used) throw new Error(`expected a ${mode} push, got ${JSON.stringify(result.delta)}`)
  const ms = (stage: string) => result.timings.find((t) => t.stage === stage)?.ms ?? 0
  const image = join(blade.storageRoot, 'users', blade.account, 'images', `${SLOT}.qcow2`)
  const info = JSON.parse(run('qemu-img', ['info', '-U', '--output=json', '-f', 'qcow2', image])) as {'actual-size': number}
  const map = JSON.parse(run('qemu-img', ['map', '-U', '--output=json', '-f', 'qcow2', image])) as {length: number; depth: number; data: boolean}[]
  return {
    sent: result.box.sent,
    seconds,
    transferSeconds: (ms('upload') + ms('convert')) / 1000,
    rssMiB: Number(readFileSync(rssFile, 'utf8').trim().split('\n').at(-1)) / 1024,
    changedBlocks: result.delta.changedBlocks,
    imageActual: info['actual-size'],
    topAllocated: map.filter((m) => m.depth === 0 && m.data).reduce((sum, m) => sum + m.length, 0),
    timings: Object.fromEntries(result.timings.map((t) => [t.stage, Math.round(t.ms / 100) / 10])),
  }
}

/** A namespace whose loopback is shaped to `mbit`, with the blade's sshd port bridged into it. */
async function shapedLink(blade: LocalBlade, mbit: number): Promise<{close: () => void}> {
  const socketPath = join('/run', `${NAMESPACE}.sock`)
  rmSync(socketPath, {force: true})
  const server: Server = createServer((inside) => {
    const sshd = connect(blade.port, blade.host)
    inside.pipe(sshd).pipe(inside)
    inside.on('error', () => sshd.destroy())
    sshd.on('error', () => inside.destroy())
  })
  await new Promise<void>((resolve) => server.listen(socketPath, resolve))
  run('ip', ['netns', 'add', NAMESPACE])
  run('ip', ['-n', NAMESPACE, 'link', 'set', 'lo', 'mtu', '1500', 'up'])
  // tbf: the rate, bursts of at most 64 KiB, and up to 50 ms of queue (a campus link's buffer).
  run('ip', ['netns', 'exec', NAMESPACE, 'tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'tbf', 'rate', `${mbit}mbit`, 'burst', '64kb', 'latency', '50ms'])
  const bridge = spawn('ip', ['netns', 'exec', NAMESPACE, 'node', BRIDGE, socketPath, String(blade.port)], {stdio: ['ignore', 'pipe', 'inherit']})
  await new Promise<void>((resolve, reject) => {
    bridge.stdout.once('data', () => resolve())
    bridge.once('exit', (code) => reject(new Error(`the bridge exited (${code})`)))
  })
  return {
    close() {
      bridge.kill('SIGTERM')
      server.close()
      spawnSync('ip', ['netns', 'del', NAMESPACE])
      rmSync(socketPath, {force: true})
    },
  }
}

const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`
const mib = (bytes: number) => `${(bytes / MIB).toFixed(1)} MiB`

async function main() {
  console.log(`machine: ${cpus().length} x ${cpus()[0]?.model}, ${(totalmem() / GIB).toFixed(0)} GiB, node ${process.version}`)
  const blade = await ensureLocalBlade()
  const testBox = await testBoxPath()
  const mbit = Number(process.env.BENCH_MBIT ?? 100)
  const two = await boxesFor(2, testBox)
  const eight = await boxesFor(8, testBox)
  await clearSlot(blade.account, SLOT)
  publish(blade, two)
  publish(blade, eight)
  const lines: string[] = []
  const links: {label: string; namespace?: string}[] = [{label: 'loopback'}, {label: `${mbit} Mbit/s`, namespace: NAMESPACE}]
  let link: {close: () => void} | undefined
  try {
    for (const {label, namespace} of links) {
      if (namespace) link = await shapedLink(blade, mbit)
      const full = await pushOnce(blade, two, 'full', namespace)
      const delta = await pushOnce(blade, two, 'delta', namespace)
      const changed = (delta.changedBlocks ?? 0) * 65536
      console.log(`${label}, full timings: ${JSON.stringify(full.timings)}; delta timings: ${JSON.stringify(delta.timings)}`)
      console.log(`${label}, full:  sent ${mib(full.sent)}, ${full.seconds.toFixed(1)} s (upload+convert ${full.transferSeconds.toFixed(1)} s), image ${mib(full.imageActual)}, laptop RSS ${full.rssMiB.toFixed(0)} MiB`)
      console.log(`${label}, delta: sent ${mib(delta.sent)}, ${delta.seconds.toFixed(1)} s (upload+apply ${delta.transferSeconds.toFixed(1)} s), ` +
        `overlay ${mib(delta.imageActual)} for ${mib(changed)} of changed blocks + ${mib(delta.topAllocated - changed)} written by hardening, laptop RSS ${delta.rssMiB.toFixed(0)} MiB`)
      lines.push(`delta at ${label}: bytes ${ratio(delta.sent, full.sent)}, time ${ratio(delta.seconds, full.seconds)} of a full push ` +
        `(upload and convert ${ratio(delta.transferSeconds, full.transferSeconds)}), overlay ${ratio(delta.imageActual, delta.topAllocated)} of the changed blocks and hardening's writes, laptop RSS ${delta.rssMiB.toFixed(0)} MiB`)
      link?.close()
      link = undefined
    }
    const big = await pushOnce(blade, eight, 'delta')
    lines.push(`laptop RSS of a delta push: ${lines.length ? /RSS (\d+) MiB$/.exec(lines[0])![1] : '?'} MiB for a 2 GiB disk, ${big.rssMiB.toFixed(0)} MiB for an 8 GiB disk`)
  } finally {
    link?.close()
    await clearSlot(blade.account, SLOT)
  }
  for (const line of lines) console.log(line)
}

await main()
