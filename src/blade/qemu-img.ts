import {execa} from 'execa'

import {ShienError} from '../errors.js'

export interface QemuImgInfo {
  'virtual-size': number
  format: string
  'actual-size'?: number
}

/** `qemu-img info` of a file whose format we already know; never lets qemu-img probe it. */
export async function qemuImgInfo(path: string, format: string, signal?: AbortSignal): Promise<QemuImgInfo> {
  const {stdout} = await execa('qemu-img', ['info', '--output=json', '-f', format, path], {cancelSignal: signal})
  return JSON.parse(stdout) as QemuImgInfo
}

/**
 * Converts a VMDK the gate accepted into qcow2 (`-f vmdk` always: never probe), reporting
 * progress in percent as qemu-img prints it with `-p`.
 */
export async function convertVmdkToQcow2(
  src: string,
  dest: string,
  opts: {signal?: AbortSignal; onProgress?: (percent: number) => void},
): Promise<void> {
  const child = execa('qemu-img', ['convert', '-p', '-f', 'vmdk', '-O', 'qcow2', '-o', 'compat=1.1', src, dest], {
    cancelSignal: opts.signal,
    reject: false,
  })
  child.stdout?.on('data', (chunk: Buffer) => {
    const matches = [...chunk.toString('latin1').matchAll(/\((\d+(?:\.\d+)?)\/100%\)/g)]
    const last = matches.at(-1)
    if (last) opts.onProgress?.(Number(last[1]))
  })
  const result = await child
  if (result.isCanceled) opts.signal?.throwIfAborted()
  if (result.exitCode !== 0) {
    const full = /No space left/i.test(result.stderr)
    throw new ShienError(`qemu-img could not convert the disk: ${result.stderr.trim().split('\n').at(-1)}`, {
      code: full ? 'BLADE_DISK_FULL' : 'CONVERT_FAILED',
      exit: 'remote',
      suggestions: full ? ['Free space in your blade directory or ask an admin for more.'] : ['Check the box on your laptop with shien box inspect.'],
    })
  }
}
