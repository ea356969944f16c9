import {ShienError} from '../errors.js'
import type {LogsRequest} from '../protocol/ie-docker-exec.js'
import type {DockerContext} from './context.js'
import {findOwn} from './own.js'

/** What `logs --json` returns: the container's output so far, both streams as they came. */
export interface LogsResult {
  name: string
  container: string
  output?: string
  /** The engine's exit code when it wrote straight through. */
  exitCode?: number
}

/**
 * Shows one of the owner's containers' output. On a terminal (no --json) the engine writes it
 * straight through, and `-f` follows it until the caller goes away (Ctrl-C, or the SSH channel
 * closing). Under --json the output so far is collected into the result, so `-f` is refused.
 */
export async function containerLogs(ctx: DockerContext, req: LogsRequest, o: {json: boolean}): Promise<LogsResult> {
  if (o.json && req.follow) {
    throw new ShienError('logs -f cannot go with --json: it never ends.', {code: 'USAGE', exit: 'usage', suggestions: ['Leave out -f to get the output so far, or leave out --json to follow it.']})
  }
  const {container} = await findOwn(ctx, req.name)
  const args = ['logs', ...(req.follow ? ['--follow'] : []), ...(req.timestamps ? ['--timestamps'] : []), ...(req.tail === undefined ? [] : ['--tail', String(req.tail)]), container]
  if (!o.json) {
    const signal = req.follow ? AbortSignal.any([ctx.signal, callerGone()]) : ctx.signal
    const exitCode = await ctx.engine.attached(args, {signal}).catch((error: unknown) => {
      if (signal.aborted && !ctx.signal.aborted) return 0
      throw error
    })
    return {name: req.name, container, exitCode}
  }
  let output = ''
  await ctx.engine.streamed(args, {signal: ctx.signal, timeoutMs: 60_000, output: (text) => (output += text)})
  return {name: req.name, container, output}
}

/**
 * Aborts when stdin ends: over SSH (no terminal) that is the laptop closing the channel, which
 * must stop `logs -f` at once rather than at the container's next line of output. On a
 * terminal it never fires: Ctrl-C stops it.
 */
function callerGone(): AbortSignal {
  const gone = new AbortController()
  if (process.stdin.isTTY) return gone.signal
  const stop = () => gone.abort(new Error('the caller went away'))
  process.stdin.once('end', stop).once('close', stop).once('error', stop)
  process.stdin.resume()
  return gone.signal
}
