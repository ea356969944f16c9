import {mkdtempSync, readdirSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {CLASS_BASE, CLASS_VERSION, ensureClass, ensureCourseBase, readQueue, resetStudent, sampleQueue, studentBox, type Student} from '../support/class.js'
import {startShien} from '../support/cli.js'
import {ensureLocalBlade, type LocalBlade} from '../support/local-blade.js'
import {testBoxPath} from '../support/test-box.js'
import {definedDomains} from '../support/virsh.js'

/**
 * A class pushing at once: the six students of `local-blade.sh class 6` delta-push the same
 * course box together, on a blade whose queue runs two heavy steps at a time (push.concurrent 2
 * in its config). Three pushes are stopped while they wait: the laptop killed, the connection
 * cut (the student's sshd session killed on the blade), and Ctrl-C. The other three succeed;
 * the queue never runs more than two steps and admits them in order of arrival; the stopped
 * pushes leave no place in the queue, no process, no staged image and nothing in incoming/ but
 * their upload (kept for a resume).
 */

const N = 6
const SLOT = '01'
const NAME = 'class'

let blade: LocalBlade
let students: Student[]
let work: string
let box: string

const userDir = (account: string, ...rest: string[]) => join(blade.storageRoot, 'users', account, ...rest)

beforeAll(async () => {
  blade = await ensureLocalBlade()
  students = await ensureClass(N)
  for (const s of students) await resetStudent(blade, s.account, SLOT)
  work = mkdtempSync(join(tmpdir(), 'shien-class-'))
  const testBox = await testBoxPath()
  await ensureCourseBase(blade, testBox, work)
  box = await studentBox(testBox, work)
}, 1_200_000)

afterAll(async () => {
  if (students) for (const s of students) await resetStudent(blade, s.account, SLOT)
  if (work) rmSync(work, {recursive: true, force: true})
})

describe('a class of six pushing at once, two heavy steps at a time', () => {
  it('finishes the pushes left alone, in order of arrival, and three stopped ones leave nothing behind', async () => {
    const sampler = sampleQueue()
    // The first three seen waiting are stopped, one way each.
    const stops: Array<(s: Student, child: ReturnType<typeof startShien>) => Promise<unknown>> = [
      async (_, child) => child.kill('SIGKILL'),
      async (s) => execa('pkill', ['-KILL', '-u', s.account, '-x', 'sshd'], {reject: false}),
      async (_, child) => child.kill('SIGINT'),
    ]
    const stopped = new Map<string, number>()
    const runs = students.map((s) => {
      const child = startShien(['push', box, '--host', 'blade', '--slot', SLOT, '--name', NAME, '--base', `${CLASS_BASE}@${CLASS_VERSION}`, '--no-start'], {home: s.laptopHome})
      let stderr = ''
      child.stderr?.on('data', (chunk: Buffer) => {
        stderr += chunk.toString()
        if (!stopped.has(s.account) && stopped.size < stops.length && /waiting for the blade/.test(stderr)) {
          stopped.set(s.account, stopped.size)
          void stops[stopped.get(s.account)!](s, child)
        }
      })
      return child.then((r) => ({student: s, exitCode: r.exitCode, signal: r.signal, stderr}))
    })
    const results = await Promise.all(runs)
    // The stopped pushes' blade steps notice and leave; give them a few seconds.
    const deadline = Date.now() + 60_000
    while (readQueue().length > 0 && Date.now() < deadline) await new Promise((f) => setTimeout(f, 200))
    sampler.stop()

    expect(stopped.size, results.map((r) => r.stderr).join('\n---\n')).toBe(3)
    expect(readQueue()).toEqual([])
    expect(sampler.maxRunning()).toBe(2)
    // First come, first served: in ticket order, each step was admitted no earlier than the one before.
    const admitted = [...sampler.seen.values()].filter((e) => e.admittedAt !== undefined).sort((a, b) => a.ticket - b.ticket)
    expect(admitted.length).toBeGreaterThanOrEqual(6)
    for (let i = 1; i < admitted.length; i++) expect(admitted[i].admittedAt!).toBeGreaterThanOrEqual(admitted[i - 1].admittedAt!)

    const domains = await definedDomains()
    for (const r of results) {
      const {account} = r.student
      const images = readdirSync(userDir(account, 'images'))
      if (!stopped.has(account)) {
        expect(r.exitCode, r.stderr).toBe(0)
        expect(images, account).toContain(`${SLOT}.qcow2`)
        expect(domains).toContain(`${account}-${SLOT}`)
        continue
      }
      const how = ['laptop killed', 'connection cut', 'Ctrl-C'][stopped.get(account)!]
      if (how === 'Ctrl-C') expect(r.exitCode, r.stderr).toBe(130)
      else expect(r.exitCode, `${how}: ${r.stderr}`).not.toBe(0)
      // Nothing of the push on the blade but its upload, and nothing of it still running.
      expect(images.filter((f) => f.includes(SLOT)), `${how}: ${account}`).toEqual([])
      expect(readdirSync(userDir(account, 'incoming')).filter((f) => !/^(class\.(delta|box)(\.part)?|\.class\.(delta|box)\.slot)$/.test(f)), how).toEqual([])
      expect(domains, how).not.toContain(`${account}-${SLOT}`)
      const left = await execa('pgrep', ['-u', account, '-a', '-f', 'shien|guestfish|qemu'], {reject: false})
      expect(left.stdout, how).toBe('')
    }
  }, 1_200_000)
})
