import {ShienError} from '../errors.js'
import type {DockerSettings} from '../config/blade-config.js'
import {firstErrorLine, runAttached, runStreaming, runTool} from '../process/run.js'

/** The container engine's CLI (docker or podman): arguments are arrays, never a shell. */
export interface ContainerEngine {
  /** Runs a subcommand and returns its stdout; a failure throws ENGINE_FAILED / ENGINE_MISSING. */
  exec(args: string[], o: {signal: AbortSignal}): Promise<string>
  /** Like exec, but a non-zero exit is returned, not thrown (for "is it there?" questions). */
  probe(args: string[], o: {signal: AbortSignal}): Promise<{ok: boolean; stdout: string}>
  /** Runs a subcommand on this terminal (run -it, attach); resolves with its exit code. */
  attached(args: string[], o: {signal: AbortSignal}): Promise<number>
  /** Runs a long subcommand (build), handing its output to `output` as it comes; a failure throws. */
  streamed(args: string[], o: {signal: AbortSignal; timeoutMs: number; output: (text: string) => void}): Promise<void>
}

/** The engine named in the configuration, run with the fixed environment of exec.ts. */
export class CliEngine implements ContainerEngine {
  constructor(private readonly s: Pick<DockerSettings, 'engine' | 'enginePath' | 'engineArgs'>) {}

  async exec(args: string[], o: {signal: AbortSignal}): Promise<string> {
    const r = await this.spawn(args, o)
    if (r.exitCode !== 0) {
      throw new ShienError(`${this.s.engine} ${args[0]} failed: ${errorText(r.stderr)}.`, {
        code: 'ENGINE_FAILED',
        exit: 'remote',
        suggestions: ['If it keeps failing, show this message to an admin.'],
      })
    }
    return r.stdout
  }

  async probe(args: string[], o: {signal: AbortSignal}): Promise<{ok: boolean; stdout: string}> {
    const r = await this.spawn(args, o)
    return {ok: r.exitCode === 0, stdout: r.stdout}
  }

  async attached(args: string[], o: {signal: AbortSignal}): Promise<number> {
    await this.spawn(['version'], o)
    return runAttached(this.s.enginePath, [...this.s.engineArgs, ...args], o)
  }

  async streamed(args: string[], o: {signal: AbortSignal; timeoutMs: number; output: (text: string) => void}): Promise<void> {
    const r = await runStreaming(this.s.enginePath, [...this.s.engineArgs, ...args], o)
    if (r.exitCode === -1 && !r.timedOut) throw this.missing(r.tail)
    if (r.timedOut) {
      throw new ShienError(`${this.s.engine} ${args[0]} was stopped after ${Math.round(o.timeoutMs / 60_000)} minutes.`, {
        code: 'ENGINE_TIMEOUT',
        exit: 'remote',
        suggestions: ['Make the work smaller, or ask an admin about docker.buildTimeoutMinutes.'],
      })
    }
    if (r.exitCode !== 0) {
      const last = r.tail.split('\n').map((l) => l.trim()).filter(Boolean).at(-1) ?? 'no output'
      throw new ShienError(`${this.s.engine} ${args[0]} failed: ${last}`, {code: 'ENGINE_FAILED', exit: 'remote', suggestions: ['Read the output above for the step that failed.']})
    }
  }

  private async spawn(args: string[], o: {signal: AbortSignal}) {
    const r = await runTool(this.s.enginePath, [...this.s.engineArgs, ...args], {signal: o.signal, timeoutMs: 120_000})
    // runTool reports a program that could not be started with exit -1.
    if (r.exitCode === -1 && !r.timedOut) throw this.missing(r.stderr)
    return r
  }

  private missing(output: string): ShienError {
    return new ShienError(`The container engine ${this.s.enginePath} cannot be run: ${firstErrorLine(output)}.`, {
      code: 'ENGINE_MISSING',
      exit: 'remote',
      suggestions: [`Ask an admin to install ${this.s.engine} or fix docker.enginePath in /etc/shien/config.json.`],
    })
  }
}

/** The engine's error, with the line after it when podman ends one with ":" ("1 error occurred:"). */
function errorText(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l.length > 0)
  const at = lines.findIndex((l) => !l.startsWith('time='))
  if (at === -1) return firstErrorLine(stderr)
  return lines[at].endsWith(':') && lines[at + 1] !== undefined ? `${lines[at]} ${lines[at + 1]}` : lines[at]
}
