// Runs shien commands in the test process with @oclif/test's runCommand: oclif loads the package
// from its root (package.json, oclif.manifest.json, the commands index), routes the words to a
// command and runs it, as bin/shien.js does, without starting a node per test.
import {Console} from 'node:console'
import {readdirSync, statSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {runCommand} from '@oclif/test'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))

export interface InProcessRun<T = unknown> {
  /** What `shien` would exit with: 0, the code of the ExitError or CLIError thrown, else 1. */
  exitCode: number
  stdout: string
  stderr: string
  /** stdout parsed as JSON, when it is JSON. */
  json: any
  result?: T
  error?: Error & {oclif?: {exit?: number}}
}

function newestSource(dir: string): number {
  return Math.max(
    0,
    ...readdirSync(dir, {withFileTypes: true}).map((entry) => {
      const path = join(dir, entry.name)
      return entry.isDirectory() ? newestSource(path) : entry.name.endsWith('.ts') ? statSync(path).mtimeMs : 0
    }),
  )
}

/**
 * oclif imports the commands from dist/ (the `explicit` target in package.json; without tsx or
 * ts-node it cannot load TypeScript), so a build older than the sources would test old code.
 */
export function assertBuildIsCurrent(): void {
  let built: number
  try {
    built = statSync(join(ROOT, 'dist/commands/index.js')).mtimeMs
  } catch {
    throw new Error('dist/commands/index.js is missing: run "npm run build" before these tests.')
  }
  const source = Math.max(newestSource(join(ROOT, 'commands')), newestSource(join(ROOT, 'src')))
  if (source > built) throw new Error('dist/ is older than commands/ or src/: run "npm run build" before these tests.')
}

/**
 * Runs `shien ...args`. oclif prints help and some errors with console.log, which vitest
 * intercepts, so the command gets a console bound to the streams runCommand captures; oclif's
 * default error handling sets process.exitCode, which would fail the test run, so it is restored.
 */
export async function shien<T = unknown>(args: string[]): Promise<InProcessRun<T>> {
  const vitestConsole = globalThis.console
  const exitCode = process.exitCode
  globalThis.console = new Console({stdout: process.stdout, stderr: process.stderr})
  try {
    const {stdout, stderr, error, result} = await runCommand<T>(args, {root: ROOT})
    let json: unknown
    try {
      json = JSON.parse(stdout)
    } catch {
      json = undefined
    }
    const code = error ? ((error as InProcessRun['error'])?.oclif?.exit ?? 1) : 0
    return {exitCode: code, stdout, stderr, json, result, error}
  } finally {
    globalThis.console = vitestConsole
    process.exitCode = exitCode
  }
}
