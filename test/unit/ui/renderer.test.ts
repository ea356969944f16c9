import {PassThrough} from 'node:stream'

import {describe, expect, it} from 'vitest'

import type {PipelineEvent} from '../../../src/pipeline/events.js'
import {createRenderer} from '../../../src/ui/renderer.js'

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
