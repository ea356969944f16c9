import {readFile} from 'node:fs/promises'
import {join} from 'node:path'
import {PassThrough} from 'node:stream'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {helpText, parseInvocation} from '../../../src/virsh/cli.js'
import {Harness} from './harness.js'

/** `ie-virsh admit` through ie-virsh's own entry, on a real queue folder under the harness's runDir. */
describe('ie-virsh admit', () => {
  const h = new Harness()
  const lines = () => h.out.join('').trim().split('\n').map((l) => JSON.parse(l))
  beforeEach(() => h.setUp({push: {concurrent: 1}}))
  afterEach(() => h.tearDown())

  it('is dispatched by ie-virsh: admits the caller (SUDO_UID), holds the place until stdin closes, then leaves', async () => {
    const stdin = new PassThrough()
    const done = h.run(['admit', '--step', 'harden', '--slot', '01'], 1001, {stdin})
    while (!h.out.join('').includes('admitted')) await new Promise((r) => setTimeout(r, 20))
    const queue = JSON.parse(await readFile(join(h.root, 'run', 'push-queue', 'queue.json'), 'utf8'))
    expect(queue.entries).toEqual([expect.objectContaining({uid: 1001, step: 'harden', slot: '01', state: 'running'})])
    stdin.end()
    expect(await done).toBe(0)
    expect(lines()).toEqual([
      {type: 'admitted', waitedMs: expect.any(Number)},
      expect.objectContaining({step: 'harden', slot: '01', outcome: 'released'}),
    ])
    expect(JSON.parse(await readFile(join(h.root, 'run', 'push-queue', 'queue.json'), 'utf8')).entries).toEqual([])
  })

  it('refuses to run other than through sudo, as every command does', async () => {
    expect(await h.run(['admit', '--step', 'harden', '--slot', '01'], 1001, {stdin: new PassThrough(), realUid: 1001})).toBe(6)
    expect(lines()).toEqual([{error: expect.objectContaining({code: 'NOT_ROOT'})}])
  })

  it('takes exactly --step and --slot, first on the command line', async () => {
    for (const argv of [['admit', '--step', 'harden'], ['admit', '--step', 'harden', '--slot', '01', '--json'], ['--json', 'admit', '--step', 'harden', '--slot', '01']]) {
      expect(await h.run(argv, 1001, {stdin: new PassThrough()}), argv.join(' ')).toBe(2)
    }
    expect(() => parseInvocation(['--json', 'admit'])).toThrow(/admit takes exactly/)
  })

  it('is in ie-virsh help', () => {
    expect(helpText()).toMatch(/^ {2}admit --step STEP --slot SLOT +Wait for a place in the blade's push queue/m)
  })
})
