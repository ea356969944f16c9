import {execa} from 'execa'

import {REPO_ROOT} from './cli.js'

/** The architectures the tests have a real Debian box of. */
export type TestBoxArch = 'amd64' | 'arm64'

/** How a test box boots: amd64 has a BIOS box and a UEFI one; arm64 boots by UEFI only. */
export type TestBoxFirmware = 'bios' | 'efi'

const cached = new Map<string, Promise<string>>()

/**
 * The real Debian test box of an architecture and firmware (amd64 BIOS: boxes/debian-12;
 * amd64 UEFI: boxes/debian-12-efi; arm64, UEFI: boxes/debian-12-arm64), built once per recipe
 * and cached in /var/cache/shien/boxes (scripts/test-box.sh --arch --firmware). The firmware
 * defaults to BIOS for amd64 and UEFI for arm64. Building the arm64 box takes minutes:
 * scripts/test.sh builds all three before the tests run.
 */
export function testBoxPath(arch?: 'amd64', firmware?: TestBoxFirmware): Promise<string>
export function testBoxPath(arch: 'arm64', firmware?: 'efi'): Promise<string>
export function testBoxPath(arch: TestBoxArch = 'amd64', firmware?: TestBoxFirmware): Promise<string> {
  const chosen = firmware ?? (arch === 'arm64' ? 'efi' : 'bios')
  const key = `${arch}/${chosen}`
  let path = cached.get(key)
  if (!path) {
    path = execa('bash', ['scripts/test-box.sh', '--arch', arch, '--firmware', chosen], {cwd: REPO_ROOT}).then((r) => r.stdout.trim().split('\n').at(-1)!)
    cached.set(key, path)
  }
  return path
}
