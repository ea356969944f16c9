/**
 * The terminal is shared by what draws on it as work goes (a stage's spinner, a bar) and the
 * questions a command asks (an unknown host key, a key's passphrase). Whatever draws registers
 * here; a question steps it aside while it is asked, so the answer is never drawn over.
 */
export interface LiveDrawing {
  pause(): void
  resume(): void
}

let live: LiveDrawing | undefined

/** Registers what now draws on the terminal; the function returned gives the terminal back. */
export function drawOnTerminal(drawing: LiveDrawing): () => void {
  live = drawing
  return () => {
    if (live === drawing) live = undefined
  }
}

/** Runs a question with the live drawing paused, and resumes it afterwards. */
export async function askOnTerminal<T>(ask: () => Promise<T>): Promise<T> {
  const paused = live
  paused?.pause()
  try {
    return await ask()
  } finally {
    paused?.resume()
  }
}
