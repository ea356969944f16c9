import {runTool, type RunAs} from '../process/run.js'

/**
 * The real path of `path` as `owner` resolves it, or undefined when they cannot (missing, or
 * behind a folder they cannot enter). Resolved as root, the answer would tell a student whether
 * any path on the blade exists, and a link they planted would reach what only root can.
 */
export async function realpathAs(owner: RunAs, path: string, o: {signal?: AbortSignal}): Promise<string | undefined> {
  const r = await runTool('realpath', ['-e', '--', path], {as: owner, signal: o.signal, timeoutMs: 30_000})
  const real = r.stdout.replace(/\n$/, '')
  return r.exitCode === 0 && real.length > 0 && !real.includes('\n') ? real : undefined
}

/** Whether `path` is a folder, as `owner` sees it. */
export async function isFolderAs(owner: RunAs, path: string, o: {signal?: AbortSignal}): Promise<boolean> {
  return (await runTool('test', ['-d', path], {as: owner, signal: o.signal, timeoutMs: 30_000})).exitCode === 0
}
