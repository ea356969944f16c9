import {writeError, writeResult} from '../virsh/output.js'
import {parseDockerInvocation, wantsJson} from './cli.js'
import {runDockerInvocation} from './commands.js'
import {defaultDockerDeps, type DockerDeps} from './context.js'

export type {DockerDeps} from './context.js'

/**
 * ie-docker's entry point (bin/ie-docker.js). Runs as root through sudo: the caller is
 * SUDO_UID and the configuration /etc/shien/config.json; `deps` exists for tests only.
 * Resolves with the exit code.
 */
export async function main(argv: string[], deps: Partial<DockerDeps> = {}): Promise<number> {
  const io = {
    stdout: deps.stdout ?? ((text: string) => void process.stdout.write(text)),
    stderr: deps.stderr ?? ((text: string) => void process.stderr.write(text)),
  }
  const json = wantsJson(argv)
  const abort = new AbortController()
  const onSigint = () => abort.abort(new Error('interrupted'))
  process.once('SIGINT', onSigint)
  try {
    const d: DockerDeps = {...defaultDockerDeps(), ...deps, ...io}
    const {result, text, exitCode} = await runDockerInvocation(parseDockerInvocation(argv), d, abort.signal)
    writeResult(io, json, result, text)
    return exitCode ?? 0
  } catch (error) {
    return writeError(io, json, error, abort.signal)
  } finally {
    process.off('SIGINT', onSigint)
  }
}
