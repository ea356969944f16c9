import {execa} from 'execa'

import {REPO_ROOT} from './cli.js'

/** The architectures the tests have a real Debian box of. */
export type TestBoxArch = 'amd64' | 'arm64'

const cached = new Map<TestBoxArch, Promise<string>>()

/**
 * The real Debian test box of an architecture (amd64: boxes/debian-12; arm64:
 * boxes/debian-12-arm64), built once per recipe and cached in /var/cache/shien/boxes
 * (scripts/test-box.sh --arch). Building the arm64 box takes minutes: scripts/test.sh builds
 * both before the tests run.
 */
export function testBoxPath(arch: TestBoxArch = 'amd64'): Promise<string> {
  let path = cached.get(arch)
  if (!path) {
    path = execa('bash', ['scripts/test-box.sh', '--arch', arch], {cwd: REPO_ROOT}).then((r) => r.stdout.trim().split('\n').at(-1)!)
    cached.set(arch, path)
  }
  return path
}
