import {parseInvocation, wantsJson} from './cli.js'
import {runInvocation} from './commands.js'
import {defaultDeps, type VirshDeps} from './context.js'
import {writeError, writeResult} from './output.js'

export type {VirshDeps} from './context.js'

/**
 * ie-virsh's entry point (bin/ie-virsh.js). Runs as root through sudo: the caller is SUDO_UID
 * and the configuration is /etc/shien/config.json; `deps` exists for tests only.
 * Resolves with the exit code.
 */
export async function main(argv: string[], deps: Partial<VirshDeps> = {}): Promise<number> {
  const io = {
    stdout: deps.stdout ?? ((text: string) => void process.stdout.write(text)),
    stderr: deps.stderr ?? ((text: string) => void process.stderr.write(text)),
  }
  const json = wantsJson(argv)
  const abort = new AbortController()
  const onSigint = () => abort.abort(new Error('interrupted'))
  process.once('SIGINT', onSigint)
  try {
    const d: VirshDeps = {...defaultDeps(), ...deps, ...io}
    const {result, text, exitCode} = await runInvocation(parseInvocation(argv), d, abort.signal)
    writeResult(io, json, result, text)
    return exitCode ?? 0
  } catch (error) {
    return writeError(io, json, error, abort.signal)
  } finally {
    process.off('SIGINT', onSigint)
  }
}
