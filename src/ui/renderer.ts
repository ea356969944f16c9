import cliProgress from 'cli-progress'

import type {PipelineEvent, StageId} from '../push/runner.js'

const LABELS: Record<StageId, string> = {
  package: 'Package',
  upload: 'Upload',
  convert: 'Convert',
  harden: 'Harden',
  define: 'Define',
  start: 'Start',
}

export type Renderer = ((event: PipelineEvent) => void) & {stop(): void}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`

/**
 * Bars with rate and ETA on a terminal, plain lines otherwise (CI logs, pipes), nothing under
 * --json. Everything goes to stderr: stdout belongs to the result.
 */
export function createRenderer(mode: 'tty' | 'plain' | 'silent', stream: NodeJS.WriteStream = process.stderr): Renderer {
  if (mode === 'silent') return Object.assign(() => undefined, {stop: () => undefined})
  return mode === 'tty' ? ttyRenderer(stream) : plainRenderer(stream)
}

function plainRenderer(stream: NodeJS.WriteStream): Renderer {
  const lastTenth = new Map<StageId, number>()
  const render = (event: PipelineEvent) => {
    if (event.type === 'stage:start') stream.write(`${LABELS[event.stage]}...\n`)
    if (event.type === 'stage:end') stream.write(`${LABELS[event.stage]} done in ${(event.ms / 1000).toFixed(1)} s\n`)
    if (event.type === 'note') stream.write(`  ${event.message}\n`)
    if (event.type === 'progress' && event.total) {
      const tenth = Math.floor((event.bytes / event.total) * 10)
      if (tenth > (lastTenth.get(event.stage) ?? 0)) {
        lastTenth.set(event.stage, tenth)
        const amount = event.stage === 'upload' ? ` (${mib(event.bytes)} of ${mib(event.total)})` : ''
        stream.write(`  ${tenth * 10}%${amount}\n`)
      }
    }
  }
  return Object.assign(render, {stop: () => undefined})
}

function ttyRenderer(stream: NodeJS.WriteStream): Renderer {
  let bar: cliProgress.SingleBar | undefined
  let barStage: StageId | undefined
  const stopBar = () => {
    bar?.stop()
    bar = undefined
    barStage = undefined
  }
  const render = (event: PipelineEvent) => {
    if (event.type === 'progress' && event.total) {
      if (barStage !== event.stage) {
        stopBar()
        barStage = event.stage
        bar = new cliProgress.SingleBar(
          {
            stream,
            format: `${LABELS[event.stage].padEnd(8)} [{bar}] {percentage}% | {done}/{whole} | {speed} | ETA {eta_formatted}`,
            etaBuffer: 50,
            fps: 5,
          },
          cliProgress.Presets.shades_classic,
        )
        bar.start(event.total, event.bytes, {done: '', whole: '', speed: ''})
      }
      const upload = event.stage === 'upload'
      const rate = upload ? rateOf(bar!, event.bytes) : ''
      bar!.update(event.bytes, {done: upload ? mib(event.bytes) : event.bytes, whole: upload ? mib(event.total) : event.total, speed: rate})
      return
    }
    if (event.type === 'stage:end') {
      stopBar()
      stream.write(`${LABELS[event.stage].padEnd(8)} done in ${(event.ms / 1000).toFixed(1)} s\n`)
    }
    if (event.type === 'note') {
      stopBar()
      stream.write(`  ${event.message}\n`)
    }
  }
  return Object.assign(render, {stop: stopBar})
}

const started = new WeakMap<object, {t0: number; b0: number}>()

function rateOf(bar: object, bytes: number): string {
  const now = performance.now()
  const first = started.get(bar) ?? {t0: now, b0: bytes}
  started.set(bar, first)
  const seconds = (now - first.t0) / 1000
  return seconds > 0.5 ? `${mib((bytes - first.b0) / seconds)}/s` : '...'
}
