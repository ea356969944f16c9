/**
 * A class on the local blade: `scripts/local-blade.sh class N` makes N students (e195801, ...),
 * each with a laptop home; the course base is the test box published as os101/debian12
 * 2026.1.0; a student's box is that box with a few MiB of their own files.
 */
import {randomBytes} from 'node:crypto'
import {existsSync, readdirSync, readFileSync, rmSync} from 'node:fs'
import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {execa} from 'execa'

import {REPO_ROOT, runShien} from './cli.js'
import {changeGuest, diskOf, repackBox, unpackBox} from './derived-box.js'
import type {LocalBlade} from './local-blade.js'
import {clearSlot} from './virsh.js'

export const CLASS_BASE = 'os101/debian12'
export const CLASS_VERSION = '2026.1.0'
export const QUEUE_FILE = '/run/shien/push-queue/queue.json'

export interface Student {
  account: string
  laptopHome: string
}

/** One place in the blade's push queue file, as root reads it. */
export interface QueueEntry {
  ticket: number
  uid: number
  step: string
  state: 'waiting' | 'running'
  joinedAt: number
  admittedAt?: number
}

export async function ensureClass(n: number): Promise<Student[]> {
  await execa('bash', ['scripts/local-blade.sh', 'class', String(n)], {cwd: REPO_ROOT})
  const all = JSON.parse(readFileSync('/var/lib/shien-blade/class.json', 'utf8')) as Student[]
  return all.slice(0, n)
}

/** The student's slot emptied (VM and images) and their incoming/ emptied. */
export async function resetStudent(blade: LocalBlade, account: string, slot: string): Promise<void> {
  await clearSlot(account, slot)
  const incoming = join(blade.storageRoot, 'users', account, 'incoming')
  for (const f of existsSync(incoming) ? readdirSync(incoming) : []) rmSync(join(incoming, f), {recursive: true, force: true})
}

/** Publishes the test box as the course base, unless the blade has that version already. */
export async function ensureCourseBase(blade: LocalBlade, testBox: string, home: string): Promise<string> {
  const boxes = join(blade.storageRoot, 'boxes')
  const base = join(boxes, CLASS_BASE, CLASS_VERSION, 'libvirt.qcow2')
  if (!existsSync(base)) {
    const published = await runShien(['box', 'publish', testBox, '--name', CLASS_BASE, '--version', CLASS_VERSION, '--to', boxes, '--json'], {home})
    if (published.exitCode !== 0) throw new Error(`publishing the course base failed: ${published.stdout}${published.stderr}`)
  }
  return base
}

/** A student's box: the test box with `dataMiB` of their files added and /etc/motd removed. */
export async function studentBox(testBox: string, work: string, dataMiB = 4): Promise<string> {
  const unpacked = await unpackBox(testBox, join(work, 'box'))
  const disk = await diskOf(unpacked, join(work, 'disk.qcow2'))
  await writeFile(join(work, 'data.bin'), randomBytes(dataMiB * 2 ** 20))
  await changeGuest(disk, [`upload ${join(work, 'data.bin')} /home/vagrant/data.bin`, 'rm-f /etc/motd'])
  return repackBox(unpacked, disk, join(work, 'student.box'))
}

export function readQueue(): QueueEntry[] {
  try {
    return (JSON.parse(readFileSync(QUEUE_FILE, 'utf8')) as {entries: QueueEntry[]}).entries
  } catch {
    return []
  }
}

/** Samples the queue file (root's, replaced whole on each change) until stopped. */
export function sampleQueue(everyMs = 50) {
  const seen = new Map<number, QueueEntry>()
  let maxRunning = 0
  const timer = setInterval(() => {
    const entries = readQueue()
    maxRunning = Math.max(maxRunning, entries.filter((e) => e.state === 'running').length)
    for (const e of entries) seen.set(e.ticket, {...seen.get(e.ticket), ...e})
  }, everyMs)
  return {stop: () => clearInterval(timer), seen, maxRunning: () => maxRunning}
}
