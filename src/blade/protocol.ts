import {packageInfo} from '../package-info.js'

/**
 * The laptop and blade sides of shien talk through `shien blade ...` over SSH. Bump this when a
 * blade command's flags or result change shape; both sides refuse a peer with another number.
 */
export const BLADE_PROTOCOL = 1

export const PACKAGE_VERSION: string = packageInfo().version

/** Progress and stage events travel on stderr, one per line, after this marker. */
export const EVENT_MARKER = '@shien '

export type BladeEvent =
  | {type: 'progress'; step: string; done: number; total: number}
  | {type: 'note'; message: string}

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
