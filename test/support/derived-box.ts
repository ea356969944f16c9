/**
 * Boxes made from the test box the way a student's box comes from a course base: the disk taken
 * out, changed (through libguestfs) or grown, and written back as `vagrant package` writes it
 * (a streamOptimized VMDK in the same tar, the OVF's capacity kept true).
 */
import {mkdir, readFile, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {execa} from 'execa'

import {GUESTFS_ENV} from './guest-image.js'

/** A box unpacked into a folder: its entries in order and the one VMDK among them. */
export interface UnpackedBox {
  dir: string
  entries: string[]
  vmdk: string
}

export async function unpackBox(box: string, dir: string): Promise<UnpackedBox> {
  await mkdir(dir, {recursive: true})
  const {stdout} = await execa('tar', ['-tf', box])
  const entries = stdout.split('\n').filter(Boolean)
  await execa('tar', ['-xf', box, '-C', dir])
  const vmdk = entries.find((e) => e.endsWith('.vmdk'))
  if (!vmdk) throw new Error(`${box} has no VMDK`)
  return {dir, entries, vmdk}
}

/** The box's disk as a qcow2 file to change. */
export async function diskOf(unpacked: UnpackedBox, qcow2: string): Promise<string> {
  await execa('qemu-img', ['convert', '-f', 'vmdk', '-O', 'qcow2', join(unpacked.dir, unpacked.vmdk), qcow2])
  return qcow2
}

/** Writes `disk` back as the box's VMDK (streamOptimized, as vagrant package does) and tars the box. */
export async function repackBox(unpacked: UnpackedBox, disk: string, out: string): Promise<string> {
  const vmdk = join(unpacked.dir, unpacked.vmdk)
  await rm(vmdk, {force: true})
  await execa('qemu-img', ['convert', '-f', 'qcow2', '-O', 'vmdk', '-o', 'subformat=streamOptimized', disk, vmdk])
  const {stdout} = await execa('qemu-img', ['info', '--output=json', '-f', 'qcow2', disk])
  const bytes = (JSON.parse(stdout) as {'virtual-size': number})['virtual-size']
  for (const ovf of unpacked.entries.filter((e) => e.endsWith('.ovf'))) {
    const path = join(unpacked.dir, ovf)
    const text = await readFile(path, 'utf8')
    await writeFile(path, text.replace(/ovf:capacity="\d+"/, `ovf:capacity="${bytes}"`).replace(/ovf:capacityAllocationUnits="[^"]*"/, 'ovf:capacityAllocationUnits="byte"'))
  }
  await execa('tar', ['-cf', out, '-C', unpacked.dir, ...unpacked.entries])
  return out
}

/** Runs guestfish commands (one per line, as its stdin takes them) on the inspected guest. */
export async function changeGuest(disk: string, commands: string[]): Promise<void> {
  await execa('guestfish', ['-a', disk, '-i'], {input: commands.join('\n') + '\n', env: GUESTFS_ENV})
}

/**
 * What a student changes in a term, about 5% of the test box's blocks: a project's files added
 * (`dataMiB` of data), one file removed, and two packages' files rewritten in place (perl-base's
 * modules and libc's gconv modules: new blocks, the same content).
 */
export function studentChanges(data: string, project = '/home/vagrant/project'): string[] {
  const rewrite = (dir: string) => [`cp-a ${dir} ${dir}.new`, `rm-rf ${dir}`, `mv ${dir}.new ${dir}`]
  return [
    `mkdir-p ${project}`,
    `upload ${data} ${project}/data.bin`,
    `write ${project}/README.md "# os101 assignment 3\\n"`,
    'rm-f /etc/motd',
    ...rewrite('/usr/lib/x86_64-linux-gnu/perl-base'),
    ...rewrite('/usr/lib/x86_64-linux-gnu/gconv'),
  ]
}
