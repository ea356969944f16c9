/**
 * ie-virsh's image rules, applied before the audit opens an image: a plain qcow2 file (not a
 * symlink), owned by its account, whose backing chain stays in the account's images folder or the
 * published boxes, with no external data file. A refused image is a finding, and it is not
 * opened: qemu would follow its backing file or data file wherever they point.
 *
 * This reuses ie-virsh's primitives (openExact, readQcow2Header) rather than LocalImageGate,
 * whose final cross-check runs `qemu-img info` without force-share: that fails on the image of
 * a running VM ("Failed to get shared write lock"), and running VMs are most of what is audited.
 * Each backing file's header is read here exactly as qemu would probe it, so nothing the chain
 * names is opened by qemu before it has been vetted.
 */
import {realpath} from 'node:fs/promises'
import {sep} from 'node:path'

import {badInput, ExitCode, isShienError} from '../errors.js'
import {readQcow2Header} from '../privileged/qcow2-header.js'
import {qemuBackingPath} from '../qemu-img/qcow2-backing.js'
import {openExact, type OpenedPath} from '../privileged/safe-open.js'

export interface GateScope {
  /** Who must own the image and its own backing files; undefined when no account is known. */
  uid?: number
  imagesDir: string
  boxesDir: string
}

export type GateOutcome =
  /**
   * `chain`: the backing files, resolved (what was vetted and opened); `names`: each as the
   * image before it names it, made absolute the way qemu does (what qemu will open, through
   * any symlink in it).
   */
  | {ok: true; chain: string[]; names: string[]}
  | {ok: false; reason: string; message: string; suggestion?: string}

const MAX_CHAIN = 8

/** Refusals come back as data; anything else (permission denied, I/O) is thrown. */
export async function gateImage(path: string, scope: GateScope): Promise<GateOutcome> {
  try {
    return {ok: true, ...(await vet(path, scope))}
  } catch (error) {
    if (isShienError(error) && error.exitCode === ExitCode.badInput) {
      return {ok: false, reason: error.code, message: error.message, suggestion: error.suggestions[0]}
    }
    throw error
  }
}

async function vet(path: string, scope: GateScope): Promise<{chain: string[]; names: string[]}> {
  const top = await openExact(path, {code: 'IMAGE'})
  const chain: string[] = []
  const names: string[] = []
  let current: OpenedPath = top
  let logical = path
  try {
    if (scope.uid !== undefined && top.stat.uid !== scope.uid) {
      throw badInput('IMAGE_NOT_OWNED', `${path} is not owned by its account (owner uid ${top.stat.uid}, expected ${scope.uid}).`)
    }
    for (;;) {
      const header = await readQcow2Header(current.handle, current.path)
      if (header.externalDataFile) {
        throw badInput('DATA_FILE', `${current.path} keeps its data in an external file.`, [`Make a self-contained copy: qemu-img convert -O qcow2 ${current.path} new.qcow2`])
      }
      if (header.backingName === undefined) return {chain, names}
      if (chain.length >= MAX_CHAIN) throw badInput('BACKING_TOO_DEEP', `${path} has more than ${MAX_CHAIN} backing files.`)
      logical = qemuBackingPath(logical, header.backingName)
      const next = await openBacking(header.backingName, logical, scope, [path, ...chain])
      if (current !== top) await current.handle.close()
      current = next
      chain.push(next.path)
      names.push(logical)
    }
  } finally {
    if (current !== top) await current.handle.close()
    await top.handle.close()
  }
}

async function openBacking(name: string, logical: string, scope: GateScope, seen: string[]): Promise<OpenedPath> {
  const outside = () => badInput('BACKING_OUTSIDE', `The backing file ${name} is outside the account's images folder and the published boxes.`, [
    'Rebase the image onto a published box, or make it standalone: qemu-img convert -O qcow2 IN OUT',
  ])
  // A name with a colon can be a qemu protocol (nbd:, json:{...}) rather than a file.
  if (name.includes(':')) throw outside()
  const real = await realpath(logical).catch(() => {
    throw badInput('BACKING_MISSING', `The backing file ${name} does not exist.`)
  })
  const own = real.startsWith(scope.imagesDir + sep)
  if (!own && !real.startsWith(scope.boxesDir + sep)) throw outside()
  if (seen.includes(real)) throw badInput('BACKING_LOOP', `The backing chain loops back to ${real}.`)
  const opened = await openExact(real, {code: 'BACKING'})
  if (own && scope.uid !== undefined && opened.stat.uid !== scope.uid) {
    await opened.handle.close()
    throw badInput('BACKING_NOT_OWNED', `The backing file ${real} is not owned by the image's account.`)
  }
  return opened
}
