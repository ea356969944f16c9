import {createRequire} from 'node:module'

import type cliProgressModule from 'cli-progress'
import ora, {type Ora} from 'ora'

import type {PipelineEvent} from '../pipeline/events.js'
import {formatElapsed, waitingText} from '../protocol/admission-events.js'
import {drawOnTerminal} from './terminal-owner.js'

export type Renderer = ((event: PipelineEvent) => void) & {stop(): void}

type Progress = Extract<PipelineEvent, {type: 'progress'}>
type Waiting = Extract<PipelineEvent, {type: 'waiting'}>

/** The line that ends a wait for the blade (nothing when there was no wait to speak of). */
const waitedText = (ms: number) => `waited ${formatElapsed(ms)} for the blade`

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`
const inBytes = (event: Progress) => event.unit !== 'percent'

/**
 * Bars with rate and ETA on a terminal, plain lines otherwise (CI logs, pipes), nothing under
 * --json, for every pipeline: push, cloud push, box publish. Stages are named by the labels
 * their start events carry. Everything goes to stderr: stdout belongs to the result.
 */
export function createRenderer(mode: 'tty' | 'plain' | 'silent', stream: NodeJS.WriteStream = process.stderr): Renderer {
  if (mode === 'silent') return Object.assign(() => undefined, {stop: () => undefined})
  return mode === 'tty' ? ttyRenderer(stream) : plainRenderer(stream)
}

/** Labels seen in start events; a stage only heard of through progress (from the blade) gets its id. */
function labels(): {learn(event: PipelineEvent): void; of(stage: string): string} {
  const known = new Map<string, string>()
  return {
    learn: (event) => {
      if (event.type === 'stage:start' && event.label) known.set(event.stage, event.label)
    },
    of: (stage) => known.get(stage) ?? stage.charAt(0).toUpperCase() + stage.slice(1),
  }
}

function plainRenderer(stream: NodeJS.WriteStream): Renderer {
  const label = labels()
  const lastTenth = new Map<string, number>()
  // One line per change of place in the queue; the helper's 5-second reminders only move the time.
  const lastWait = new Map<string, string>()
  const render = (event: PipelineEvent) => {
    label.learn(event)
    if (event.type === 'waiting') {
      const place = `${event.ahead}/${event.running}/${event.bound}`
      if (lastWait.get(event.stage) !== place) stream.write(`  ${waitingText(event)}\n`)
      lastWait.set(event.stage, place)
    }
    if (event.type === 'admitted' && lastWait.delete(event.stage)) stream.write(`  ${waitedText(event.waitedMs)}\n`)
    if (event.type === 'stage:start') stream.write(`${label.of(event.stage)}${event.detail ? ` ${event.detail}` : ''}...\n`)
    if (event.type === 'stage:end') stream.write(`${label.of(event.stage)} done in ${seconds(event.ms)}\n`)
    if (event.type === 'note') stream.write(`  ${event.message}\n`)
    if (event.type === 'progress' && event.total) {
      const tenth = Math.floor((event.bytes / event.total) * 10)
      if (tenth > (lastTenth.get(event.stage) ?? 0)) {
        lastTenth.set(event.stage, tenth)
        const amount = inBytes(event) ? ` (${mib(event.bytes)} of ${mib(event.total)})` : ''
        stream.write(`  ${tenth * 10}%${amount}\n`)
      }
    }
  }
  return Object.assign(render, {stop: () => undefined})
}

/** cli-progress is loaded by the first terminal renderer only: --json and piped runs never draw a bar. */
const loadCliProgress = () => createRequire(import.meta.url)('cli-progress') as typeof cliProgressModule

/**
 * On a terminal: a spinner line per running stage with its elapsed time, a bar with rate and
 * ETA once the stage reports bytes or percent, notes above them, and `Label done in 12.3 s`
 * when it ends. A question (host key, passphrase) pauses the drawing while it is asked.
 */
function ttyRenderer(stream: NodeJS.WriteStream): Renderer {
  const cliProgress = loadCliProgress()
  const label = labels()
  let bar: cliProgressModule.SingleBar | undefined
  let barStage: string | undefined
  const stopBar = () => {
    bar?.stop()
    bar = undefined
    barStage = undefined
  }
  const startBar = (event: Progress & {total: number}): cliProgressModule.SingleBar => {
    stopBar()
    spin.stop()
    barStage = event.stage
    bar = new cliProgress.SingleBar(
      {
        stream,
        format: `${label.of(event.stage).padEnd(8)} [{bar}] {percentage}% | {done}/{whole} | {speed} | ETA {eta_formatted}`,
        etaBuffer: 50,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    )
    bar.start(event.total, event.bytes, {done: '', whole: '', speed: ''})
    return bar
  }
  const spin = stageSpinner(stream)
  const wait = waitLine(stream)
  /** Writes a whole line above whatever is being drawn. */
  const above = (line: string) => {
    if (bar) stopBar()
    spin.clear()
    stream.write(`${line}\n`)
    spin.render()
  }
  const render = (event: PipelineEvent) => {
    label.learn(event)
    if (event.type === 'waiting') {
      stopBar()
      spin.stop()
      wait.show(event)
      return
    }
    if (event.type === 'admitted') {
      wait.end(event.waitedMs)
      spin.start(event.stage, label.of(event.stage))
      return
    }
    wait.end()
    if (event.type === 'stage:start') {
      stopBar()
      spin.start(event.stage, `${label.of(event.stage)}${event.detail ? ` ${event.detail}` : ''}`)
    }
    if (event.type === 'progress' && event.total) {
      const total = event.total
      const current = bar && barStage === event.stage ? bar : startBar({...event, total})
      const bytes = inBytes(event)
      current.update(event.bytes, {
        done: bytes ? mib(event.bytes) : event.bytes,
        whole: bytes ? mib(total) : total,
        speed: bytes ? rateOf(current, event.bytes) : '',
      })
      return
    }
    if (event.type === 'stage:end') {
      stopBar()
      spin.stop()
      stream.write(`${label.of(event.stage).padEnd(8)} done in ${seconds(event.ms)}\n`)
    }
    if (event.type === 'note') above(`  ${event.message}`)
  }
  const release = drawOnTerminal({pause: () => spin.pause(), resume: () => spin.resume()})
  return Object.assign(render, {
    stop: () => {
      release()
      wait.end()
      stopBar()
      spin.stop()
    },
  })
}

/** The spinner line of the stage that runs: `⠋ Package (vagrant package) 12s`. */
function stageSpinner(stream: NodeJS.WriteStream) {
  let current: {stage: string; text: string; since: number; ora: Ora; timer: NodeJS.Timeout} | undefined
  let paused: {stage: string; text: string; since: number} | undefined
  const textOf = (c: {text: string; since: number}) => `${c.text} ${formatElapsed(performance.now() - c.since)}`
  const begin = (stage: string, text: string, since: number) => {
    const spinner = ora({text: '', stream, isEnabled: true, discardStdin: false})
    // Refreshed four times a second: a once-a-second timer can fire a hair before the second
    // is full on performance.now's clock and leave the line a second behind.
    const c = {stage, text, since, ora: spinner, timer: setInterval(() => (spinner.text = textOf(c)), 250)}
    // The spinner must never keep the process alive.
    c.timer.unref()
    spinner.start(textOf(c))
    current = c
  }
  const end = () => {
    if (!current) return
    clearInterval(current.timer)
    current.ora.stop()
    current = undefined
  }
  return {
    /** Starts the stage's line; the same stage again (after a wait) keeps its start time. */
    start(stage: string, text: string) {
      const since = current?.stage === stage ? current.since : performance.now()
      end()
      begin(stage, text, since)
    },
    stop() {
      end()
      paused = undefined
    },
    clear: () => current?.ora.clear(),
    render: () => current?.ora.render(),
    pause() {
      if (current) paused = {stage: current.stage, text: current.text, since: current.since}
      end()
    },
    resume() {
      if (paused) begin(paused.stage, paused.text, paused.since)
      paused = undefined
    },
  }
}

/**
 * The terminal's `waiting for the blade: ...` line, rewritten in place as the place changes and
 * every second in between (the time counts on from the helper's last report).
 */
function waitLine(stream: NodeJS.WriteStream) {
  let current: {event: Waiting; at: number; timer: NodeJS.Timeout} | undefined
  const draw = () => {
    if (!current) return
    const elapsedMs = current.event.elapsedMs + (performance.now() - current.at)
    stream.write(`\r\x1b[2K  ${waitingText({...current.event, elapsedMs})}`)
  }
  return {
    show(event: Waiting) {
      if (current) clearInterval(current.timer)
      const timer = setInterval(draw, 1000)
      // The line must never keep the process alive.
      timer.unref()
      current = {event, at: performance.now(), timer}
      draw()
    },
    /** Ends the line: replaced by how long the wait took once admitted, else left as it was. */
    end(waitedMs?: number) {
      if (!current) return
      clearInterval(current.timer)
      current = undefined
      stream.write(waitedMs === undefined ? '\n' : `\r\x1b[2K  ${waitedText(waitedMs)}\n`)
    },
  }
}

const started = new WeakMap<object, {t0: number; b0: number}>()

function rateOf(bar: object, bytes: number): string {
  const now = performance.now()
  const first = started.get(bar) ?? {t0: now, b0: bytes}
  started.set(bar, first)
  const elapsed = (now - first.t0) / 1000
  return elapsed > 0.5 ? `${mib((bytes - first.b0) / elapsed)}/s` : '...'
}
