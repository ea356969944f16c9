// npm run bench:class: a class pushing at once on the local blade, whose queue runs two heavy
// steps at a time (push.concurrent 2 in its config, this machine's 2 cores). For each N in
// BENCH_N (default 4,12,24), N students of `local-blade.sh class` delta-push their box at once
// (only the first two start their VM: --no-start for the rest). Reported per class: every push's
// outcome, the class's wall time against N times one push alone, the longest wait in the queue,
// the blade's peak memory (the summed RSS of every process of the class's accounts but their
// running VMs, and of the root queue helpers), and the storage the images take against the base plus the changed blocks.
import {readdirSync, readFileSync} from 'node:fs'
import {mkdtemp, rm} from 'node:fs/promises'
import {cpus, tmpdir, totalmem} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'

import {CLASS_BASE, CLASS_VERSION, ensureClass, ensureCourseBase, resetStudent, sampleQueue, studentBox, type Student} from '../support/class.js'
import {SHIEN_BIN} from '../support/cli.js'
import {ensureLocalBlade, type LocalBlade} from '../support/local-blade.js'
import {testBoxPath} from '../support/test-box.js'

const SLOT = '01'
const MIB = 2 ** 20

interface PushOutcome {
  account: string
  exitCode: number
  seconds: number
  waitedMs: number
  changedBytes: number
  error?: string
}

/** One student's push, as their laptop runs it; --json for what it did. */
async function pushOf(student: Student, box: string, start: boolean): Promise<PushOutcome> {
  const t0 = performance.now()
  const r = await execa('node', [SHIEN_BIN, 'push', box, '--host', 'blade', '--slot', SLOT, '--name', 'class', '--base', `${CLASS_BASE}@${CLASS_VERSION}`, '--json', ...(start ? [] : ['--no-start'])], {
    cwd: student.laptopHome, reject: false, stdin: 'ignore',
    env: {HOME: student.laptopHome, XDG_CONFIG_HOME: join(student.laptopHome, '.config'), SSH_AUTH_SOCK: ''},
  })
  const seconds = (performance.now() - t0) / 1000
  let json: any
  try {
    json = JSON.parse(r.stdout)
  } catch {
    json = {}
  }
  const waited = Object.values((json.waitedMs ?? {}) as Record<string, number>).reduce((a, b) => a + b, 0)
  return {
    account: student.account, exitCode: r.exitCode ?? -1, seconds, waitedMs: waited,
    changedBytes: (json.delta?.changedBlocks ?? 0) * 65536, error: json.error?.code,
  }
}

/** Samples the summed RSS (KiB) of the class's processes and the root queue helpers. */
function sampleMemory(uids: Set<number>) {
  let peakKiB = 0
  const timer = setInterval(() => {
    let sum = 0
    for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
      let status: string
      try {
        status = readFileSync(`/proc/${pid}/status`, 'utf8')
      } catch {
        continue
      }
      const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1])
      const rss = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0)
      if (rss === 0 || !(uids.has(uid) || uid === 0)) continue
      let cmdline: string
      try {
        cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')
      } catch {
        continue
      }
      // The students' VMs (started by libvirt, as the student) are not the pushes' memory.
      if (uids.has(uid) && !/ -name guest=/.test(cmdline)) sum += rss
      else if (uid === 0 && /ie-virsh.* admit /.test(cmdline)) sum += rss
    }
    peakKiB = Math.max(peakKiB, sum)
  }, 250)
  return {stop: () => clearInterval(timer), peakMiB: () => peakKiB / 1024}
}

async function actualSize(path: string): Promise<number> {
  const {stdout} = await execa('qemu-img', ['info', '-U', '--output=json', '-f', 'qcow2', path])
  return (JSON.parse(stdout) as {'actual-size': number})['actual-size']
}

async function classOf(blade: LocalBlade, students: Student[], box: string, base: string, onePush: number): Promise<string> {
  for (const s of students) await resetStudent(blade, s.account, SLOT)
  const uids = new Set<number>()
  for (const s of students) uids.add(Number((await execa('id', ['-u', s.account])).stdout))
  const queue = sampleQueue(200)
  const memory = sampleMemory(uids)
  const t0 = performance.now()
  const outcomes = await Promise.all(students.map((s, i) => pushOf(s, box, i < 2)))
  const wall = (performance.now() - t0) / 1000
  queue.stop()
  memory.stop()
  const ok = outcomes.filter((o) => o.exitCode === 0)
  for (const o of outcomes) console.log(`  ${o.account}: ${o.exitCode === 0 ? 'pushed' : `failed (${o.error ?? o.exitCode})`} in ${o.seconds.toFixed(1)} s, waited ${(o.waitedMs / 1000).toFixed(1)} s`)
  let images = 0
  let changed = 0
  for (const o of ok) {
    images += await actualSize(join(blade.storageRoot, 'users', o.account, 'images', `${SLOT}.qcow2`))
    changed += o.changedBytes
  }
  const baseSize = await actualSize(base)
  const longest = Math.max(0, ...outcomes.map((o) => o.waitedMs)) / 1000
  const n = students.length
  return `class of ${n}, bound 2: ${ok.length} of ${n} pushed, ${(wall / onePush).toFixed(1)}x one push (${wall.toFixed(0)} s, one alone ${onePush.toFixed(0)} s), ` +
    `longest wait ${longest.toFixed(0)} s, peak blade memory ${(memory.peakMiB() / 1024).toFixed(2)} GiB, storage ${((baseSize + images) / (baseSize + changed)).toFixed(2)}x base+deltas ` +
    `(${((baseSize + images) / MIB).toFixed(0)} MiB for a ${(baseSize / MIB).toFixed(0)} MiB base and ${(changed / MIB).toFixed(0)} MiB of changed blocks; at most ${queue.maxRunning()} steps at once)`
}

async function main() {
  console.log(`machine: ${cpus().length} x ${cpus()[0]?.model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`)
  const sizes = (process.env.BENCH_N ?? '4,12,24').split(',').map(Number)
  const blade = await ensureLocalBlade()
  const students = await ensureClass(Math.max(...sizes))
  const work = await mkdtemp(join(tmpdir(), 'shien-class-bench-'))
  const lines: string[] = []
  try {
    const testBox = await testBoxPath()
    const base = await ensureCourseBase(blade, testBox, work)
    const box = await studentBox(testBox, work)
    // One push alone, as the yardstick (started, like the first two of each class).
    await resetStudent(blade, students[0].account, SLOT)
    const alone = await pushOf(students[0], box, true)
    if (alone.exitCode !== 0) throw new Error(`one push alone failed: ${alone.error ?? alone.exitCode}`)
    console.log(`one push alone: ${alone.seconds.toFixed(1)} s`)
    for (const n of sizes) {
      console.log(`class of ${n}:`)
      lines.push(await classOf(blade, students.slice(0, n), box, base, alone.seconds))
      console.log(lines.at(-1))
    }
  } finally {
    for (const s of students) await resetStudent(blade, s.account, SLOT)
    await rm(work, {recursive: true, force: true})
  }
  for (const line of lines) console.log(line)
}

await main()
