import {writeError, writeResult} from './output.js'
import type {PrivilegedTool} from './context.js'

/** Where a privileged command writes; tests pass their own. */
export interface EntryIO {
  stdout: (text: string) => void
  stderr: (text: string) => void
}

/** What one ie-virsh or ie-docker invocation produced. */
export interface InvocationOutcome {
  result: object
  text: string
  exitCode?: number
}

/**
 * The shared entry of ie-virsh and ie-docker: one AbortController that SIGINT aborts, the
 * result or the error written as text or JSON, and the exit code returned.
 */
export async function runPrivilegedEntry(
  tool: PrivilegedTool,
  io: Partial<EntryIO>,
  json: boolean,
  invoke: (io: EntryIO, signal: AbortSignal) => Promise<InvocationOutcome>,
): Promise<number> {
  const out: EntryIO = {
    stdout: io.stdout ?? ((text: string) => void process.stdout.write(text)),
    stderr: io.stderr ?? ((text: string) => void process.stderr.write(text)),
  }
  const abort = new AbortController()
  const onSigint = () => abort.abort(new Error('interrupted'))
  process.once('SIGINT', onSigint)
  try {
    const {result, text, exitCode} = await invoke(out, abort.signal)
    writeResult(out, json, result, text)
    return exitCode ?? 0
  } catch (error) {
    return writeError(out, json, error, abort.signal, tool)
  } finally {
    process.off('SIGINT', onSigint)
  }
}
