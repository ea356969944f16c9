import {execFileSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {PassThrough} from 'node:stream'

import {describe, expect, it, vi} from 'vitest'

import {planPublish} from '../../../src/box/publish/plan.js'
import {publishBox} from '../../../src/box/publish/publish.js'
import type {ArchiveApi} from '../../../src/cloud/archive-api.js'
import type {Uploader} from '../../../src/cloud/ftps-upload.js'
import {pushImage} from '../../../src/cloud/push-image.js'
import {Secret} from '../../../src/cloud/secret.js'
import {DEFAULT_SETTINGS} from '../../../src/cloud/settings.js'
import type {PipelineEvent} from '../../../src/pipeline/events.js'
import {createRenderer} from '../../../src/ui/renderer.js'
import {askOnTerminal} from '../../../src/ui/terminal-owner.js'
import {makeBox, tempDir} from '../../support/make-box.js'

/** A stream that keeps what is written, shaped like the terminal the renderer expects. */
function capture(isTTY: boolean) {
  const stream = new PassThrough() as PassThrough & NodeJS.WriteStream
  let text = ''
  stream.on('data', (chunk) => (text += String(chunk)))
  Object.assign(stream, {isTTY, columns: 100, cursorTo: () => true, clearLine: () => true, moveCursor: () => true})
  return {stream, text: () => text}
}

const UPLOAD: PipelineEvent[] = [
  {type: 'stage:start', stage: 'upload'},
  ...[0, 1, 3, 5, 9, 10].map((tenth): PipelineEvent => ({type: 'progress', stage: 'upload', bytes: tenth * 2 ** 20, total: 10 * 2 ** 20})),
  {type: 'note', stage: 'upload', message: 'renamed into place'},
  {type: 'stage:end', stage: 'upload', ms: 2400},
]

describe('the pipeline renderer', () => {
  it('prints plain lines off a terminal: each tenth of a transfer once, with the amount for uploads', () => {
    const out = capture(false)
    const render = createRenderer('plain', out.stream)
    for (const event of UPLOAD) render(event)
    render.stop()
    expect(out.text()).toBe(
      [
        'Upload...',
        '  10% (1.0 MiB of 10.0 MiB)',
        '  30% (3.0 MiB of 10.0 MiB)',
        '  50% (5.0 MiB of 10.0 MiB)',
        '  90% (9.0 MiB of 10.0 MiB)',
        '  100% (10.0 MiB of 10.0 MiB)',
        '  renamed into place',
        'Upload done in 2.4 s',
        '',
      ].join('\n'),
    )
  })

  it('draws a bar with the amount, rate and ETA on a terminal, and ends it with the stage', () => {
    const out = capture(true)
    const render = createRenderer('tty', out.stream)
    for (const event of UPLOAD) render(event)
    render.stop()
    const text = out.text()
    expect(text).toMatch(/Upload\s+\[[^\]]+\] \d+% \| [\d.]+ MiB\/10\.0 MiB \| (\.\.\.|[\d.]+ MiB\/s) \| ETA /)
    expect(text).toContain('Upload   done in 2.4 s')
  })

  it('prints nothing under --json', () => {
    const out = capture(true)
    const render = createRenderer('silent', out.stream)
    for (const event of UPLOAD) render(event)
    render.stop()
    expect(out.text()).toBe('')
  })
})

const WAIT: PipelineEvent[] = [
  {type: 'stage:start', stage: 'convert'},
  {type: 'waiting', stage: 'convert', ahead: 7, running: 2, bound: 2, elapsedMs: 0},
  // The helper's reminder every 5 s: the same place, only the time moved.
  {type: 'waiting', stage: 'convert', ahead: 7, running: 2, bound: 2, elapsedMs: 5000},
  {type: 'waiting', stage: 'convert', ahead: 1, running: 2, bound: 2, elapsedMs: 65_000},
  {type: 'waiting', stage: 'convert', ahead: 0, running: 2, bound: 2, elapsedMs: 80_000},
  {type: 'admitted', stage: 'convert', waitedMs: 95_000},
  {type: 'stage:end', stage: 'convert', ms: 120_000},
]

describe('the wait for the blade\'s push queue', () => {
  it('prints one line per change of place off a terminal, then how long it waited', () => {
    const out = capture(false)
    const render = createRenderer('plain', out.stream)
    for (const event of WAIT) render(event)
    render.stop()
    expect(out.text().split('\n')).toEqual([
      'Convert...',
      '  waiting for the blade: 7 pushes ahead (0s)',
      '  waiting for the blade: 1 push ahead (1m05s)',
      '  waiting for the blade: next, 2 of 2 running (1m20s)',
      '  waited 1m35s for the blade',
      'Convert done in 120.0 s',
      '',
    ])
  })

  it('says nothing of a wait when the step was admitted at once', () => {
    const out = capture(false)
    const render = createRenderer('plain', out.stream)
    for (const event of [WAIT[0], {type: 'admitted', stage: 'convert', waitedMs: 40} as PipelineEvent, WAIT.at(-1)!]) render(event)
    expect(out.text()).toBe('Convert...\nConvert done in 120.0 s\n')
  })

  it('rewrites one line in place on a terminal, counting the seconds between the blade\'s reports', async () => {
    const out = capture(true)
    const render = createRenderer('tty', out.stream)
    for (const event of WAIT.slice(0, 3)) render(event)
    await new Promise((r) => setTimeout(r, 1100))
    const waiting = out.text()
    // Redrawn from the line's start each time, never a new line while waiting.
    expect(waiting).not.toContain('\n')
    // The stage's spinner line first, put away for the wait; the third: redrawn a second later
    // with no report in between (6s; 5s if the timer ran a hair early).
    const [spinner, ...lines] = waiting.split('\r\x1b[2K').filter(Boolean)
    expect(spinner).toMatch(/Convert 0s/)
    expect(lines).toEqual([
      '  waiting for the blade: 7 pushes ahead (0s)',
      '  waiting for the blade: 7 pushes ahead (5s)',
      expect.stringMatching(/^ {2}waiting for the blade: 7 pushes ahead \([56]s\)$/),
    ])
    for (const event of WAIT.slice(3)) render(event)
    render.stop()
    const after = out.text().slice(waiting.length)
    expect(after).toContain(
      '\r\x1b[2K  waiting for the blade: 1 push ahead (1m05s)\r\x1b[2K  waiting for the blade: next, 2 of 2 running (1m20s)\r\x1b[2K  waited 1m35s for the blade\n',
    )
    // Then the stage's spinner again, until it ends.
    expect(after.slice(after.indexOf('waited 1m35s'))).toMatch(/Convert \d+s[^]*Convert {2}done in 120\.0 s\n$/)
  })

  it('shows a spinner line with the elapsed time while a stage runs, put away while a question is asked', async () => {
    // The spinner's frames, its clock and the waits below all run on the test's own timers.
    vi.useFakeTimers({toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance']})
    try {
      const out = capture(true)
      const render = createRenderer('tty', out.stream)
      render({type: 'stage:start', stage: 'connect', label: 'Connect', detail: 'to blade'})
      await vi.advanceTimersByTimeAsync(900)
      expect(out.text()).toMatch(/Connect to blade 0s/)
      expect(out.text()).not.toMatch(/Connect to blade 1s/)
      await vi.advanceTimersByTimeAsync(200)
      expect(out.text()).toMatch(/Connect to blade 1s/)
      const before = out.text().length
      const answer = await askOnTerminal(async () => {
        const quiet = out.text().length
        await vi.advanceTimersByTimeAsync(300)
        // Nothing is drawn over the question while it waits for its answer.
        expect(out.text().length).toBe(quiet)
        return 'yes'
      })
      expect(answer).toBe('yes')
      expect(out.text().length).toBeGreaterThan(before)
      await vi.advanceTimersByTimeAsync(150)
      // Drawn again afterwards, the time counting on from the stage's start.
      expect(out.text().slice(before)).toMatch(/Connect to blade 1s/)
      render({type: 'stage:end', stage: 'connect', ms: 1500})
      render.stop()
      expect(out.text()).toMatch(/Connect {2}done in 1\.5 s\n$/)
    } finally {
      vi.useRealTimers()
    }
  })

  it('prints nothing under --json', () => {
    const out = capture(true)
    const render = createRenderer('silent', out.stream)
    for (const event of WAIT) render(event)
    render.stop()
    expect(out.text()).toBe('')
  })
})

/** What a plain run printed, with the seconds (which vary) written as N. */
const steady = (text: string) => text.replace(/done in \d+\.\d s/g, 'done in N s').split('\n')

describe('the same renderer for a cloud push and a publish', () => {
  it('renders a cloud push: each stage, its notes, percent for the conversion and amounts for the upload', async () => {
    const work = mkdtempSync(join(tmpdir(), 'renderer-cloud-'))
    const image = join(work, 'os101.qcow2')
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', image, '64M'])
    const api: ArchiveApi = {
      zone: 'is1a',
      createBlank: async (a) => ({archive: {id: '42', name: a.name, availability: 'uploading'}, ftp: {hostName: 'ftp.test', user: 'u', password: new Secret('pw')}}),
      reopenFtp: async () => Promise.reject(new Error('not expected')),
      closeFtp: async () => undefined,
      get: async (id) => ({id, name: 'os101', availability: 'available'}),
      delete: async () => undefined,
    }
    const upload: Uploader = async (_file, size, _target, o) => (o.onBytes?.(size), {bytes: size, ms: 10, reply: '226'})
    const job = {imagePath: image, workDir: work, archive: {name: 'os101', description: 'd', tags: ['shien']}, keepOnFailure: false, settings: {...DEFAULT_SETTINGS, pollMs: 1}}
    const plain = capture(false)
    const tty = capture(true)
    const [toPlain, toTty] = [createRenderer('plain', plain.stream), createRenderer('tty', tty.stream)]
    await pushImage(job, {api, signal: new AbortController().signal, emit: (e) => (toPlain(e), toTty(e)), upload})
    toTty.stop()
    rmSync(work, {recursive: true, force: true})
    const lines = steady(plain.text())
    expect(lines.filter((l) => !/^ {2}\d+%$/.test(l))).toEqual([
      'Convert...',
      'Convert done in N s',
      'Create...',
      '  Archive 42 "os101" (20 GiB) created in is1a; sending the image over FTPS.',
      'Create done in N s',
      'Upload...',
      '  100% (64.0 MiB of 64.0 MiB)',
      'Upload done in N s',
      'Wait...',
      '  FTP closed; waiting for Sakura Cloud to check archive 42...',
      '  archive 42: available',
      'Wait done in N s',
      '',
    ])
    // The conversion counts percent: no amounts in MiB.
    expect(lines.slice(1, lines.indexOf('Convert done in N s'))).toContain('  100%')
    expect(tty.text()).toMatch(/Convert\s+\[[^\]]+\] \d+% \| \d+\/100 \| {2}\| ETA /)
    expect(tty.text()).toMatch(/Upload\s+\[[^\]]+\] 100% \| 64\.0 MiB\/64\.0 MiB \| /)
    expect(tty.text()).toContain('Wait     done in')
  })

  it('renders a publish: the step labels with what they work on, then a line per tenth', async () => {
    const {dir, cleanup} = await tempDir()
    try {
      const box = await makeBox(dir, 'course.box')
      const to = join(dir, 'dest')
      mkdirSync(to)
      const out = capture(false)
      const render = createRenderer('plain', out.stream)
      await publishBox(planPublish({box, name: 'os101/debian12', version: '2026.1.0', to, cwd: dir}), {onEvent: render})
      const lines = steady(out.text())
      expect(lines.filter((l) => !l.startsWith('  '))).toEqual([
        `Checking the box ${box}...`,
        'Checking the box done in N s',
        `Reading the catalog ${to}/os101/debian12.json...`,
        'Reading the catalog done in N s',
        'Computing sha256...',
        'Computing sha256 done in N s',
        'Converting for libvirt (qcow2)...',
        'Converting for libvirt (qcow2) done in N s',
        'Copying 5 files to this machine...',
        'Copying done in N s',
        `Writing the catalog ${to}/os101/debian12.json...`,
        'Writing the catalog done in N s',
        '',
      ])
      const copying = lines.slice(lines.indexOf('Copying 5 files to this machine...') + 1, lines.indexOf('Copying done in N s'))
      expect(copying.at(-1)).toMatch(/^ {2}100% \([\d.]+ MiB of [\d.]+ MiB\)$/)
    } finally {
      await cleanup()
    }
  })
})
