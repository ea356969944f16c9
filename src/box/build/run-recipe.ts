import {ShienError} from '../../errors.js'
import {runStreaming} from '../../process/run.js'
import type {Recipe} from './recipe.js'

/** Progress of a build: the recipe's steps, and its other output lines. */
export type BuildEvent =
  | {type: 'step'; seconds: number; message: string}
  | {type: 'output'; line: string}

/** A recipe step line on stderr, as every build.sh prints them: `[  12s] what it does`. */
const STEP_LINE = /^\[\s*(\d+)s\] (.*)$/
const TAIL = 30
// The recipe unmounts and removes its work folder when stopped; give it time to.
const CLEANUP_GRACE_MS = 60_000

export interface RunRecipeOptions {
  gzip?: boolean
  debCache?: string
  signal?: AbortSignal
  onEvent?: (event: BuildEvent) => void
}

/** Parses one stderr line of a recipe. */
export function parseRecipeLine(line: string): BuildEvent {
  const step = STEP_LINE.exec(line)
  return step ? {type: 'step', seconds: Number(step[1]), message: step[2]} : {type: 'output', line}
}

/**
 * Runs `build.sh OUTPUT [--gzip] [--deb-cache DIR]`, turning its stderr into events. On
 * failure the error carries the recipe's last lines, which say which step failed and why.
 */
export async function runRecipe(recipe: Recipe, output: string, opts: RunRecipeOptions = {}): Promise<Array<{seconds: number; message: string}>> {
  const args = [output, ...(opts.gzip ? ['--gzip'] : []), ...(opts.debCache ? ['--deb-cache', opts.debCache] : [])]
  const steps: Array<{seconds: number; message: string}> = []
  const tail: string[] = []
  const handle = (line: string) => {
    const event = parseRecipeLine(line)
    if (event.type === 'step') steps.push({seconds: event.seconds, message: event.message})
    else tail.push(event.line)
    if (tail.length > TAIL) tail.shift()
    opts.onEvent?.(event)
  }
  // stdout too: a step's tool may print there, and an unread pipe would stall the build.
  const partial = {stdout: '', stderr: ''}
  const result = await runStreaming(recipe.script, args, {
    env: 'user', cwd: process.cwd(), signal: opts.signal, killAfterMs: CLEANUP_GRACE_MS,
    output: (text, stream) => {
      const lines = (partial[stream] + text).split(/\r?\n/)
      partial[stream] = lines.pop() ?? ''
      for (const line of lines) handle(line)
    },
  })
  for (const rest of [partial.stderr, partial.stdout]) if (rest !== '') handle(rest)
  if (result.exitCode !== 0) {
    const last = steps.at(-1)?.message
    throw new ShienError(`Building ${recipe.name} failed (exit ${result.exitCode})${last ? ` after "${last}"` : ''}:\n${tail.join('\n')}`, {
      code: 'BUILD_FAILED', exit: 'failure',
      suggestions: ['The recipe cleaned up after itself; fix the cause above and run the same command again.'],
    })
  }
  return steps
}
