import {existsSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {execa, type ResultPromise} from 'execa'

const ABOVE = fileURLToPath(new URL('../..', import.meta.url))
/** The repository, also from the benches' compiled copy of this file (dist/test/support). */
export const REPO_ROOT = existsSync(join(ABOVE, 'package.json')) ? ABOVE : dirname(ABOVE.replace(/\/$/, '')) + '/'
export const SHIEN_BIN = join(REPO_ROOT, 'bin/shien.js')

export interface CliRun {
  exitCode: number
  stdout: string
  stderr: string
  json: any
}

/**
 * Starts the built `shien` CLI as a student's laptop would run it: HOME is the laptop home
 * (its ~/.ssh/config, key and known_hosts), no agent, no TTY.
 */
export function startShien(args: string[], opts: {home: string; cwd?: string; env?: Record<string, string>}): ResultPromise<{reject: false}> {
  return execa('node', [SHIEN_BIN, ...args], {
    cwd: opts.cwd ?? opts.home,
    env: {HOME: opts.home, XDG_CONFIG_HOME: `${opts.home}/.config`, SSH_AUTH_SOCK: '', ...opts.env},
    extendEnv: true,
    reject: false,
    stdin: 'ignore',
  }) as ResultPromise<{reject: false}>
}

export async function runShien(args: string[], opts: {home: string; cwd?: string; env?: Record<string, string>}): Promise<CliRun> {
  const result = await startShien(args, opts)
  let json: unknown
  try {
    json = JSON.parse(String(result.stdout))
  } catch {
    json = undefined
  }
  return {exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr), json}
}
