import type {PipelineEvent} from './events.js'

export type Outcome = 'ok' | 'failed' | 'cancelled'

export interface StageIO {
  signal: AbortSignal
  emit(event: PipelineEvent): void
}

/** One step of a pipeline; `cleanup` runs in reverse order once the run is over. */
export interface Stage<C, S extends string = string> {
  readonly id: S
  /** How renderers name the stage; the id, capitalized, without one. */
  readonly label?: string
  /** What the stage works on, shown after its label (a file, a destination). */
  detail?(ctx: C): string | undefined
  run(ctx: C, io: StageIO): Promise<void>
  cleanup?(ctx: C, outcome: Outcome): Promise<void>
}

export interface StageTiming<S extends string = string> {
  stage: S
  ms: number
}

/**
 * Runs stages in order. Every stage that started gets its cleanup, last first, with the run's
 * outcome, so a failed or cancelled run can undo what it left and a good run can tidy up.
 */
export async function runStages<C, S extends string>(
  stages: Array<Stage<C, S>>,
  ctx: C,
  opts: {signal: AbortSignal; onEvent?: (event: PipelineEvent) => void},
): Promise<Array<StageTiming<S>>> {
  const started: Array<Stage<C, S>> = []
  const timings: Array<StageTiming<S>> = []
  const io: StageIO = {signal: opts.signal, emit: (event) => opts.onEvent?.(event)}
  let outcome: Outcome = 'ok'
  try {
    for (const stage of stages) {
      opts.signal.throwIfAborted()
      started.push(stage)
      io.emit(startEvent(stage, ctx))
      const t0 = performance.now()
      await stage.run(ctx, io)
      const ms = Math.round(performance.now() - t0)
      timings.push({stage: stage.id, ms})
      io.emit({type: 'stage:end', stage: stage.id, ms})
    }
    return timings
  } catch (error) {
    outcome = opts.signal.aborted ? 'cancelled' : 'failed'
    throw error
  } finally {
    for (const stage of started.reverse()) {
      // A cleanup that fails must not hide the error that ended the run.
      await stage.cleanup?.(ctx, outcome).catch(() => undefined)
    }
  }
}

function startEvent<C>(stage: Stage<C>, ctx: C): PipelineEvent {
  const detail = stage.detail?.(ctx)
  return {type: 'stage:start', stage: stage.id, ...(stage.label ? {label: stage.label} : {}), ...(detail ? {detail} : {})}
}
