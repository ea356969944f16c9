import type {AdmissionEvent} from './admission-events.js'
import type {SlotHolder} from './blade-steps.js'

/** Progress and notes travel on the blade step's stderr, one per line, after this marker. */
export const EVENT_MARKER = '@shien '

export type BladeEvent =
  /** `done` of `total`: bytes of the disk when `unit` says so (convert), else percent. */
  | {type: 'progress'; step: string; done: number; total: number; unit?: 'bytes'}
  | {type: 'note'; message: string}
  /** `shien blade lock` holds the slot's push lock (and keeps it until its stdin ends). */
  | {type: 'locked'; holder: SlotHolder}
  /**
   * A heavy step's place in the blade's push queue, as the queue's helper reported it: counts
   * and times only (`waiting` as it changes, then `admitted` with the whole wait).
   */
  | Extract<AdmissionEvent, {type: 'waiting' | 'admitted'}>

export function emitBladeEvent(event: BladeEvent): void {
  process.stderr.write(EVENT_MARKER + JSON.stringify(event) + '\n')
}

export function parseBladeEvent(line: string): BladeEvent | undefined {
  if (!line.startsWith(EVENT_MARKER)) return undefined
  try {
    return JSON.parse(line.slice(EVENT_MARKER.length)) as BladeEvent
  } catch {
    return undefined
  }
}
