/**
 * A tmux server of a test's own (`-L NAME`, no config), so no user session or setting is
 * involved: the terminal tests drive the CLI through it and read its screen.
 */
import {execa} from 'execa'

export interface TmuxTerminal {
  /** A tmux command on this server; never rejects, the result says how it went. */
  tmux(args: string[]): ReturnType<typeof execa>
  /** What the session's pane shows now. */
  screen(): Promise<string>
  /** Waits until the screen matches; resolves with it, or fails showing what it showed. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>
}

export function tmuxTerminal(session: string): TmuxTerminal {
  const tmux = (args: string[]) => execa('tmux', ['-L', session, '-f', '/dev/null', ...args], {reject: false})
  const screen = async () => String((await tmux(['capture-pane', '-p', '-t', session])).stdout)
  async function waitFor(pattern: RegExp, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs
    let text = ''
    while (Date.now() < deadline) {
      text = await screen()
      if (pattern.test(text)) return text
      await new Promise((f) => setTimeout(f, 200))
    }
    throw new Error(`The terminal never showed ${pattern}; it shows:\n${text}`)
  }
  return {tmux, screen, waitFor}
}
