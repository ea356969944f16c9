/**
 * What a pipeline reports while it runs: push, cloud push and box publish alike. `src/` only
 * emits these; the command's renderer turns them into bars or lines (or nothing, with --json).
 */
export type PipelineEvent =
  /** `label` names the stage for people (the id, capitalized, without one); `detail` says on what. */
  | {type: 'stage:start'; stage: string; label?: string; detail?: string}
  /** Bytes unless `unit` says the count is a percentage (qemu-img reports only that). */
  | {type: 'progress'; stage: string; bytes: number; total?: number; unit?: 'bytes' | 'percent'}
  | {type: 'note'; stage: string; message: string}
  | {type: 'stage:end'; stage: string; ms: number}
  /** The stage waits its turn for something shared (the blade's push queue): counts and time so far. */
  | {type: 'waiting'; stage: string; ahead: number; running: number; bound: number; elapsedMs: number}
  /** Its turn came after `waitedMs`, and the stage goes on. */
  | {type: 'admitted'; stage: string; waitedMs: number}

export type Emit = (event: PipelineEvent) => void
