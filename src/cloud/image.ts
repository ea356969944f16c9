import {open, rm, stat} from 'node:fs/promises'
import {basename, join} from 'node:path'

import {badInput, ShienError} from '../errors.js'
import {QemuImgError, qemuImgConvert, qemuImgInfo} from '../qemu-img/qemu-img.js'

export type ImageFormat = 'raw' | 'qcow2'

export interface ImageInfo {
  path: string
  format: ImageFormat
  /** The disk's size as the guest sees it: what the archive must hold. */
  virtualSize: number
}

/** Headers of disk formats Sakura Cloud does not take as they are (only raw and qcow2 are handled). */
const OTHER_FORMATS: Array<[string, Buffer]> = [
  ['VMDK', Buffer.from('KDMV')],
  ['VMDK descriptor', Buffer.from('# Disk DescriptorFile')],
  ['VHD', Buffer.from('conectix')],
  ['VHDX', Buffer.from('vhdxfile')],
  ['VDI', Buffer.from('<<< ')],
]

/**
 * Tells raw from qcow2 by the file's first bytes (qemu-img is never left to probe: a raw image
 * whose first sector looks like a qcow2 header would be misread), and reads the virtual size.
 */
export async function inspectImage(path: string, signal?: AbortSignal): Promise<ImageInfo> {
  const stats = await stat(path).catch(() => undefined)
  if (!stats?.isFile()) throw badInput('CLOUD_NO_IMAGE', `${path} is not a file.`)
  const head = Buffer.alloc(64)
  const handle = await open(path, 'r')
  try {
    await handle.read(head, 0, head.length, 0)
  } finally {
    await handle.close()
  }
  if (head.subarray(0, 4).equals(Buffer.from([0x51, 0x46, 0x49, 0xfb]))) {
    const [info] = await qemuImgInfo(path, {format: 'qcow2', signal, env: 'user'}).catch((error: unknown) => {
      if (!(error instanceof QemuImgError)) throw error
      signal?.throwIfAborted()
      if (error.failure === 'in-use') throw inUse(path)
      throw badInput('CLOUD_IMAGE_UNREADABLE', `qemu-img cannot read the image: ${error.line}`)
    })
    return {path, format: 'qcow2', virtualSize: info.virtualSize}
  }
  const other = OTHER_FORMATS.find(([, magic]) => head.subarray(0, magic.length).equals(magic))
  if (other) {
    throw badInput('CLOUD_IMAGE_FORMAT', `${path} is a ${other[0]} image; shien sends raw and qcow2 images.`, [
      `Convert it first: qemu-img convert -O qcow2 ${basename(path)} disk.qcow2`,
    ])
  }
  return {path, format: 'raw', virtualSize: stats.size}
}

/**
 * Converts a qcow2 (with its backing chain, flattened) into a sparse raw file in `workDir`,
 * reporting percent. The caller removes the file; a failed conversion removes it here.
 */
export async function convertToRaw(
  image: ImageInfo,
  workDir: string,
  opts: {signal?: AbortSignal; onPercent?: (percent: number) => void},
): Promise<string> {
  const target = join(workDir, `.${basename(image.path)}.shien-cloud-${process.pid}.raw`)
  // -S 4k keeps runs of zeroes as holes: a 20 GiB disk with 2 GiB of data takes 2 GiB here.
  // No -U: a disk a running VM writes to fails its lock, rather than being copied half-written.
  const failed = await qemuImgConvert({
    src: image.path, srcFormat: 'qcow2', dest: target, destFormat: 'raw', sparse: '4k',
    signal: opts.signal, onPercent: opts.onPercent, env: 'user',
  }).then(
    () => undefined,
    (error: unknown) => error,
  )
  if (failed === undefined) return target
  await rm(target, {force: true})
  opts.signal?.throwIfAborted()
  if (!(failed instanceof QemuImgError)) throw failed
  if (failed.failure === 'in-use') throw inUse(image.path)
  const full = failed.failure === 'disk-full'
  throw new ShienError(`qemu-img could not convert ${image.path} to raw: ${failed.line}`, {
    code: full ? 'CLOUD_DISK_FULL' : 'CLOUD_CONVERT_FAILED',
    exit: full ? 'refused' : 'badInput',
    suggestions: full ? [`Free space in ${workDir} (the raw image needs room for the disk's data).`] : [],
  })
}

const inUse = (path: string) =>
  new ShienError(`${path} is in use by a running VM.`, {
    code: 'CLOUD_IMAGE_IN_USE',
    exit: 'refused',
    suggestions: ['Shut the VM down first (sudo poweroff in the guest, or ie-virsh destroy SLOT), so its disk is copied consistent.'],
  })
