export type StageId = 'package' | 'upload' | 'convert' | 'harden' | 'define' | 'start'

export type Outcome = 'ok' | 'failed' | 'cancelled'

/** What a pipeline reports while it runs; renderers turn these into bars or lines. */
export type PipelineEvent =
  | {type: 'stage:start'; stage: StageId}
  | {type: 'progress'; stage: StageId; bytes: number; total?: number}
  | {type: 'note'; stage: StageId; message: string}
  | {type: 'stage:end'; stage: StageId; ms: number}

export interface StageIO {
  signal: AbortSignal
  emit(event: PipelineEvent): void
}

/** One step of a pipeline; `cleanup` runs in reverse order once the run is over. */
export interface Stage<C> {
  readonly id: StageId
  run(ctx: C, io: StageIO): Promise<void>
  cleanup?(ctx: C, outcome: Outcome): Promise<void>
}

export interface StageTiming {
  stage: StageId
  ms: number
}

/**
 * Runs stages in order. Every stage that started gets its cleanup, last first, with the run's
 * outcome, so a failed or cancelled run can undo what it left and a good run can tidy up.
 */
export async function runStages<C>(
  stages: Stage<C>[],
  ctx: C,
  opts: {signal: AbortSignal; onEvent?: (event: PipelineEvent) => void},
): Promise<StageTiming[]> {
  const started: Stage<C>[] = []
  const timings: StageTiming[] = []
  const io: StageIO = {signal: opts.signal, emit: (event) => opts.onEvent?.(event)}
  let outcome: Outcome = 'ok'
  try {
    for (const stage of stages) {
      opts.signal.throwIfAborted()
      started.push(stage)
      io.emit({type: 'stage:start', stage: stage.id})
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
