
/** The steps of a publish, in order. */
export type PublishStep = 'inspect' | 'lock' | 'checksum' | 'convert' | 'copy' | 'catalog'

/** Progress of a publish; `src/` only emits these, the command renders them. */
export type PublishEvent =
  | {type: 'step:start'; step: PublishStep; detail?: string}
  | {type: 'progress'; step: PublishStep; done: number; total: number}
  | {type: 'note'; message: string}

const LABELS: Record<PublishStep, string> = {
  inspect: 'Checking the box',
  lock: 'Reading the catalog',
  checksum: 'Computing sha256',
  convert: 'Converting for libvirt (qcow2)',
  copy: 'Copying',
  catalog: 'Writing the catalog',
}

/**
 * Plain progress lines (one per step, then every tenth of a long step), for a terminal or a
 * log alike. Returns a function to feed events to.
 */
export function progressLines(write: (line: string) => void): (event: PublishEvent) => void {
  let lastTenth = -1
  let current: PublishStep | undefined
  return (event) => {
    if (event.type === 'note') write(`  ${event.message}`)
    if (event.type === 'step:start') {
      current = event.step
      lastTenth = 0
      write(`${LABELS[event.step]}${event.detail ? ` ${event.detail}` : ''}...`)
    }
    if (event.type === 'progress' && event.step === current && event.total > 0) {
      const tenth = Math.floor((event.done / event.total) * 10)
      if (tenth > lastTenth) {
        lastTenth = tenth
        write(`  ${tenth * 10}%`)
      }
    }
  }
}
