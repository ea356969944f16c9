// The boot disk of the cached test box (scripts/test-box.sh builds it), for the benches that
// need a real guest: as the box's VMDK, and converted as a push's convert step converts it.
import {execFileSync} from 'node:child_process'
import {readdir} from 'node:fs/promises'
import {join} from 'node:path'

import {pushSettings} from '../../src/config/blade-config.js'
import {qemuImgConvert} from '../../src/qemu-img/qemu-img.js'

const BOXES = '/var/cache/shien/boxes'
// The amd64 BIOS box only: debian-12-arm64-<hash>.box and debian-12-efi-<hash>.box live in the same folder.
const AMD64_BOX = /^debian-12-[0-9a-f]{16}\.box$/

/** box-disk001.vmdk of the cached test box, extracted into `dir`. */
export async function testBoxVmdk(dir: string): Promise<string> {
  const box = (await readdir(BOXES)).find((n) => AMD64_BOX.test(n))
  if (!box) throw new Error(`No test box in ${BOXES}: run scripts/test-box.sh first.`)
  execFileSync('tar', ['-xf', join(BOXES, box), '-C', dir, 'box-disk001.vmdk'])
  return join(dir, 'box-disk001.vmdk')
}

/** One push's convert, as the blade's convert step runs it. */
export async function convertForPush(vmdk: string, dest: string): Promise<void> {
  await qemuImgConvert({src: vmdk, srcFormat: 'vmdk', dest, destFormat: 'qcow2', options: ['compat=1.1'], cache: {target: pushSettings({}).convertCache}})
}
