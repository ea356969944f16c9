import {readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

/** shien's name on the npm registry (package.json `name`). */
export const PACKAGE_NAME = '@ie-ryukyu/shien'

/** Where the installed shien package is, and its version. */
export interface PackageInfo {
  root: string
  version: string
  templatesDir: string
}

/**
 * Finds the package from this module's own location (never from the working directory or
 * the environment, which the caller controls). This file runs from src under the test
 * runner and from dist/src when installed, so it walks up to shien's package.json.
 */
export function packageInfo(from: string = fileURLToPath(import.meta.url)): PackageInfo {
  let dir = dirname(from)
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {name?: string; version?: string}
      if (pkg.name === PACKAGE_NAME) return {root: dir, version: pkg.version ?? '0.0.0', templatesDir: join(dir, 'templates')}
    } catch {
      // No package.json here (or not ours): keep walking up.
    }
    dir = dirname(dir)
  }
  throw new Error(`shien's package.json was not found above ${from}`)
}
