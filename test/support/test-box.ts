import {execa} from 'execa'

import {REPO_ROOT} from './cli.js'

let cached: Promise<string> | undefined

/** The real Debian test box (boxes/debian-12), built once per recipe and cached in /var/cache/shien/boxes (scripts/test-box.sh). */
export function testBoxPath(): Promise<string> {
  cached ??= execa('bash', ['scripts/test-box.sh'], {cwd: REPO_ROOT}).then((r) => r.stdout.trim().split('\n').at(-1)!)
  return cached
}
