import {realpath, stat, unlink} from 'node:fs/promises'
import {dirname, isAbsolute, resolve, sep} from 'node:path'

import {ShienError, badInput} from '../errors.js'
import {grantAcl} from './acl.js'
import {inspectChain, type ImageLayer} from './qemu-img.js'
import {readQcow2Header} from './qcow2-header.js'
import {openExact, type OpenedPath} from './safe-open.js'

/** An image ie-virsh has accepted for a slot, with what it read (not what it was told). */
export interface CheckedImage {
  slot: string
  path: string
  virtualSize: number
  /** Real paths of the backing files, nearest first; empty for a standalone image. */
  backingChain: string[]
}

/** Checks a slot's image and lets libvirt's qemu user reach it. */
export interface ImageGate {
  check(slot: string, o: {signal: AbortSignal}): Promise<CheckedImage>
  grantQemuAccess(image: CheckedImage, o: {signal: AbortSignal}): Promise<void>
  /** Throws unless the image still belongs to the caller (libvirt must not have chowned it). */
  verifyOwner(image: CheckedImage): Promise<void>
  /** Deletes the slot's image and its `.json` record; resolves with the paths removed. */
  removeImage(slot: string): Promise<string[]>
}

/** The caller's part of the storage, as real paths (the storage root already resolved). */
export interface ImageScope {
  uid: number
  home: string
  imagesDir: string
  boxesDir: string
  image(slot: string): string
  record(slot: string): string
}

// A box on top of a box on top of a box is already unusual; a longer chain is refused.
const MAX_CHAIN = 8

/** The image rules of `ie-virsh define`, on the local filesystem, qemu-img and setfacl. */
export class LocalImageGate implements ImageGate {
  constructor(
    private readonly scope: ImageScope,
    private readonly qemuUser: string,
  ) {}

  async check(slot: string, o: {signal: AbortSignal}): Promise<CheckedImage> {
    const path = this.scope.image(slot)
    const top = await openExact(path, {code: 'IMAGE'})
    try {
      if (top.stat.uid !== this.scope.uid) {
        throw badInput('IMAGE_NOT_OWNED', `${path} is not owned by you (owner uid ${top.stat.uid}).`, [
          'Use an image you converted yourself (shien push does this).',
        ])
      }
      const chain = await this.vetChain(top)
      // Only now, with every file in the chain vetted, may qemu-img open them.
      const layers = await inspectChain(path, o)
      await checkLayers(path, layers, chain)
      return {slot, path, virtualSize: layers[0].virtualSize, backingChain: chain}
    } finally {
      await top.handle.close()
    }
  }

  async grantQemuAccess(image: CheckedImage, o: {signal: AbortSignal}): Promise<void> {
    const own = image.backingChain.filter((p) => isInside(p, this.scope.imagesDir))
    const grants: [string, 'rw-' | 'r--' | '--x', boolean][] = [
      [this.scope.home, '--x', true],
      [this.scope.imagesDir, '--x', true],
      [image.path, 'rw-', false],
      ...own.map((p): [string, 'r--', boolean] => [p, 'r--', false]),
    ]
    for (const [path, perms, directory] of grants) {
      const opened = await openExact(path, {code: 'IMAGE', directory})
      try {
        await grantAcl(opened, this.qemuUser, perms, o)
      } finally {
        await opened.handle.close()
      }
    }
  }

  async verifyOwner(image: CheckedImage): Promise<void> {
    const {uid} = await stat(image.path)
    if (uid !== this.scope.uid) {
      throw new ShienError(`libvirt took ownership of ${image.path} (now uid ${uid}); the VM was stopped.`, {
        code: 'IMAGE_RELABELLED',
        suggestions: ["Ask an admin: the domain template must keep <seclabel model='dac' relabel='no'/> in the disk source."],
      })
    }
  }

  async removeImage(slot: string): Promise<string[]> {
    // Opening the folder exactly proves no symlinked folder leads elsewhere; unlink itself
    // never follows a symlink in the last component.
    const dir = await openExact(this.scope.imagesDir, {code: 'IMAGE', directory: true}).catch((error: unknown) => {
      if (error instanceof ShienError && error.code === 'IMAGE_MISSING') return undefined
      throw error
    })
    if (dir === undefined) return []
    await dir.handle.close()
    const removed: string[] = []
    for (const path of [this.scope.image(slot), this.scope.record(slot)]) {
      const gone = await unlink(path).then(
        () => true,
        (error: NodeJS.ErrnoException) => {
          if (error.code === 'ENOENT') return false
          throw error
        },
      )
      if (gone) removed.push(path)
    }
    return removed
  }

  /** Follows backing names through headers read by ie-virsh itself; returns real paths. */
  private async vetChain(top: OpenedPath): Promise<string[]> {
    const chain: string[] = []
    let current = top
    let logical = top.path
    try {
      for (;;) {
        const header = await readQcow2Header(current.handle, current.path)
        if (header.externalDataFile) throw dataFileRefused(current.path)
        if (header.backingName === undefined) return chain
        if (chain.length >= MAX_CHAIN) throw badInput('BACKING_TOO_DEEP', `${top.path} has more than ${MAX_CHAIN} backing files.`)
        // qemu resolves a relative name against the folder of the image that names it.
        logical = isAbsolute(header.backingName) ? header.backingName : resolve(dirname(logical), header.backingName)
        const next = await this.openBacking(header.backingName, logical, [top.path, ...chain])
        if (current !== top) await current.handle.close()
        current = next
        chain.push(next.path)
      }
    } finally {
      if (current !== top) await current.handle.close()
    }
  }

  private async openBacking(name: string, logical: string, seen: string[]): Promise<OpenedPath> {
    // A name with a colon can be a qemu protocol (nbd:, json:{...}) rather than a file.
    if (name.includes(':')) throw backingOutside(name)
    let real: string
    try {
      real = await realpath(logical)
    } catch {
      throw badInput('BACKING_MISSING', `The backing file ${name} does not exist.`)
    }
    const own = isInside(real, this.scope.imagesDir)
    if (!own && !isInside(real, this.scope.boxesDir)) throw backingOutside(name)
    if (seen.includes(real)) throw badInput('BACKING_LOOP', `The backing chain loops back to ${real}.`)
    const opened = await openExact(real, {code: 'BACKING'})
    if (own && opened.stat.uid !== this.scope.uid) {
      await opened.handle.close()
      throw badInput('BACKING_NOT_OWNED', `The backing file ${real} is not owned by you.`)
    }
    return opened
  }
}

/** Cross-checks qemu-img's view of the chain against the one vetted from the headers. */
async function checkLayers(path: string, layers: ImageLayer[], chain: string[]): Promise<void> {
  if (layers.length !== chain.length + 1) throw changedWhileChecking(path)
  for (const [i, layer] of layers.entries()) {
    const name = i === 0 ? path : chain[i - 1]
    if (layer.format !== 'qcow2') throw badInput('BACKING_FORMAT', `${name} is ${layer.format}, not qcow2.`)
    if (layer.dataFile !== undefined) throw dataFileRefused(name)
    if (i === chain.length) return
    // Without a declared format qemu would probe the backing file, trusting its content.
    if (layer.backingFormat !== 'qcow2') {
      throw badInput('BACKING_FORMAT', `${name} does not declare its backing file as qcow2.`, [
        `Declare it: qemu-img rebase -u -f qcow2 -F qcow2 -b ${chain[i]} ${name}`,
      ])
    }
    const real = layer.backingFile && (await realpath(layer.backingFile).catch(() => undefined))
    if (real !== chain[i]) throw changedWhileChecking(path)
  }
}

function changedWhileChecking(path: string) {
  return badInput('IMAGE_CHANGED', `${path} changed while it was being checked.`, ['Run the command again.'])
}

function isInside(path: string, dir: string): boolean {
  return path.startsWith(dir + sep)
}

function dataFileRefused(path: string) {
  return badInput('DATA_FILE', `${path} keeps its data in an external file; ie-virsh accepts only self-contained qcow2.`, [
    `Make a self-contained copy: qemu-img convert -O qcow2 ${path} new.qcow2`,
  ])
}

function backingOutside(name: string) {
  return badInput('BACKING_OUTSIDE', `The backing file ${name} is outside your images folder and the published boxes.`, [
    'Rebase the image onto a published box, or convert it to a standalone image: qemu-img convert -O qcow2 IN OUT',
  ])
}
