import {sep} from 'node:path'

import {ShienError, badInput} from '../errors.js'
import {firstErrorLine, runTool, type RunAs} from '../process/run.js'
import {QemuImgError, qemuImgInfo, type ImageLayer} from '../qemu-img/qemu-img.js'
import {qemuBackingPath} from '../qemu-img/qcow2-backing.js'
import {readQcow2Header} from '../privileged/qcow2-header.js'
import {openExact, type OpenedPath} from '../privileged/safe-open.js'
import {realpathAs} from '../privileged/as-owner.js'
import {imagePlatform, type ImagePlatform} from './image-platform.js'

/** An image ie-virsh has accepted for a slot, with what it read (not what it was told). */
export interface CheckedImage {
  slot: string
  path: string
  virtualSize: number
  /** Real paths of the backing files, nearest first; empty for a standalone image. */
  backingChain: string[]
}

/**
 * Checks a slot's image. The check gives clear refusals; it is not what keeps other students'
 * files safe, since the owner can swap the image right after it: qemu runs as the owner
 * (template.ts), and everything here that follows a name the owner controls runs as the owner.
 */
export interface ImageGate {
  check(slot: string, o: {signal: AbortSignal}): Promise<CheckedImage>
  /** Deletes the slot's image, its `.json` record and its UEFI store, as the owner; resolves with the paths removed. */
  removeImage(slot: string, o: {signal: AbortSignal}): Promise<string[]>
  /** The architecture and firmware the push recorded for the slot's image (`images/<slot>.json`), read as the owner. */
  platform(slot: string, o: {signal: AbortSignal}): Promise<ImagePlatform>
}

/** Places in `check` where a test may act (swap a file) before the gate goes on. */
export type GatePoint = 'header-read' | 'chain-inspected'

/** The caller's part of the storage, as real paths (the storage root already resolved). */
export interface ImageScope {
  uid: number
  /** The owner's primary gid: work done as the owner runs as uid:gid. */
  gid: number
  home: string
  imagesDir: string
  boxesDir: string
  image(slot: string): string
  record(slot: string): string
  nvram(slot: string): string
}

// A push's record is a few KiB.
const RECORD_LIMIT = 1 << 20

// A box on top of a box on top of a box is already unusual; a longer chain is refused.
const MAX_CHAIN = 8

/** The image rules of `ie-virsh define`, on the local filesystem and qemu-img. */
export class LocalImageGate implements ImageGate {
  private readonly owner: RunAs

  /** `pause` is for tests that race the gate; ie-virsh itself never passes one. */
  constructor(
    private readonly scope: ImageScope,
    private readonly pause: (point: GatePoint) => Promise<void> = async () => undefined,
  ) {
    this.owner = {uid: scope.uid, gid: scope.gid}
  }

  async check(slot: string, o: {signal: AbortSignal}): Promise<CheckedImage> {
    const path = this.scope.image(slot)
    const top = await openExact(path, {code: 'IMAGE'})
    try {
      if (top.stat.uid !== this.scope.uid) {
        throw badInput('IMAGE_NOT_OWNED', `${path} is not owned by you (owner uid ${top.stat.uid}).`, [
          'Use an image you converted yourself (shien push does this).',
        ])
      }
      const chain = await this.vetChain(top, o)
      await this.pause('header-read')
      // Only now, with every file in the chain vetted, does qemu-img open them. As the owner:
      // the owner can swap the file after its header was read, and qemu-img then opens
      // whatever the new header names (a device, a FIFO, another student's image, a `json:`
      // driver). `-f qcow2`: a raw file can hold a valid-looking qcow2 header.
      const layers = await qemuImgInfo(path, {format: 'qcow2', backingChain: true, as: this.owner, signal: o.signal}).catch((error: unknown) => {
        if (!(error instanceof QemuImgError)) throw error
        throw badInput('IMAGE_UNREADABLE', `qemu-img cannot read ${path}: ${error.failure === 'timed-out' ? 'qemu-img timed out' : error.line}.`)
      })
      await this.pause('chain-inspected')
      await checkLayers(path, layers, chain, (p) => this.realpathAsOwner(p, o))
      return {slot, path, virtualSize: layers[0].virtualSize, backingChain: chain}
    } finally {
      await top.handle.close()
    }
  }

  async removeImage(slot: string, o: {signal: AbortSignal}): Promise<string[]> {
    // As the owner, by path: whatever the owner swapped into the path (a symlinked images
    // folder leading to another account's), the unlink reaches only what the owner could
    // delete anyway. rm -v names each file it removed, so the result says what really went.
    const paths = [this.scope.image(slot), this.scope.record(slot), this.scope.nvram(slot)]
    const r = await runTool('rm', ['-f', '-v', '--', ...paths], {as: this.owner, signal: o.signal, timeoutMs: 60_000})
    const removed = paths.filter((p) => r.stdout.includes(`'${p}'`))
    if (r.exitCode !== 0) {
      throw new ShienError(`Cannot remove the image of slot ${slot}: ${firstErrorLine(r.stderr).replace(/^rm:\s*/, '')}.`, {
        code: 'IMAGE_NOT_REMOVED',
        exit: 'refused',
        suggestions: [`Check that ${this.scope.imagesDir} is your own folder, not a link, and remove the file yourself.`],
      })
    }
    return removed
  }

  async platform(slot: string, o: {signal: AbortSignal}): Promise<ImagePlatform> {
    // As the owner and bounded: the record is the owner's file, and could be a link to anything
    // the owner can read, or to /dev/zero.
    const path = this.scope.record(slot)
    const r = await runTool('head', ['-c', String(RECORD_LIMIT + 1), '--', path], {as: this.owner, signal: o.signal, timeoutMs: 30_000})
    if (r.exitCode !== 0) return imagePlatform(undefined, path)
    if (r.stdout.length > RECORD_LIMIT) throw badInput('IMAGE_RECORD_INVALID', `${path} is larger than a push's record.`, ['Push the image again (shien push --replace).'])
    return imagePlatform(r.stdout, path)
  }

  /**
   * The real path of `path` as the owner resolves it, or undefined when the owner cannot
   * resolve it. As root, the answer would tell whether any path on the blade exists.
   */
  private realpathAsOwner(path: string, o: {signal: AbortSignal}): Promise<string | undefined> {
    return realpathAs(this.owner, path, o)
  }

  /** Follows backing names through headers read by ie-virsh itself; returns real paths. */
  private async vetChain(top: OpenedPath, o: {signal: AbortSignal}): Promise<string[]> {
    const chain: string[] = []
    let current = top
    let logical = top.path
    try {
      for (;;) {
        const header = await readQcow2Header(current.handle, current.path)
        if (header.externalDataFile) throw dataFileRefused(current.path)
        if (header.backingName === undefined) return chain
        if (chain.length >= MAX_CHAIN) throw badInput('BACKING_TOO_DEEP', `${top.path} has more than ${MAX_CHAIN} backing files.`)
        // qemu joins a relative name to the folder of the image that names it, as text.
        logical = qemuBackingPath(logical, header.backingName)
        const next = await this.openBacking(header.backingName, logical, [top.path, ...chain], o)
        if (current !== top) await current.handle.close()
        current = next
        chain.push(next.path)
      }
    } finally {
      if (current !== top) await current.handle.close()
    }
  }

  private async openBacking(name: string, logical: string, seen: string[], o: {signal: AbortSignal}): Promise<OpenedPath> {
    // A name with a colon can be a qemu protocol (nbd:, json:{...}) rather than a file.
    if (name.includes(':')) throw backingOutside(name)
    const real = await this.realpathAsOwner(logical, o)
    if (real === undefined) {
      throw badInput('BACKING_MISSING', `The backing file ${name} does not exist, or you cannot read it.`)
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
async function checkLayers(
  path: string,
  layers: ImageLayer[],
  chain: string[],
  realpath: (path: string) => Promise<string | undefined>,
): Promise<void> {
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
    const real = layer.backingFile && (await realpath(layer.backingFile))
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
