import {isCI} from 'ci-info'

import {wantsJson} from './error-output.js'

/**
 * Turns off @oclif/plugin-warn-if-update-available's notice (and its background look-up of the
 * newest version on npm) where it is noise: in CI, and under --json, whose output scripts read.
 * The plugin reads SHIEN_SKIP_NEW_VERSION_CHECK; offline, its look-up fails in a detached
 * process with no output, so it says nothing there either.
 */
export function quietUpdateNotice(argv: readonly string[], env: NodeJS.ProcessEnv = process.env, ci = isCI): void {
  if (ci || wantsJson(argv)) env.SHIEN_SKIP_NEW_VERSION_CHECK = 'true'
}
