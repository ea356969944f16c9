/**
 * Host keys of published boxes, many boxes per appliance launch: each box is one more read-only
 * drive of the same appliance, so reading every box costs one launch per `perLaunch` boxes. Boxes
 * come from instructors and are public anyway, which is why sharing an appliance between them is
 * fine (students' images never share one). Each root filesystem is mounted by its own device, not
 * through its fstab: two versions of a box carry the same filesystem labels and UUIDs.
 */
import {dirname} from 'node:path'

import {isShienError} from '../errors.js'
import {fingerprint} from '../harden/edits.js'
import {GuestfishSession} from '../harden/guestfish.js'
import {GuestFiles} from './guest-files.js'
import {gateImage, type GateOutcome} from './image-gate.js'
import type {BoxReport, HostKey} from './types.js'

export interface BoxReadOptions {
  boxesDir: string
  perLaunch: number
  timeoutMs: number
  signal?: AbortSignal
}

export async function readBoxes(paths: string[], o: BoxReadOptions): Promise<BoxReport[]> {
  const reports = new Map<string, BoxReport>()
  const accepted: string[] = []
  for (const path of paths) {
    let gate: GateOutcome
    try {
      gate = await gateImage(path, {imagesDir: dirname(path), boxesDir: o.boxesDir})
    } catch (error) {
      reports.set(path, failedBox(path, error))
      continue
    }
    if (gate.ok) accepted.push(path)
    else reports.set(path, {path, status: 'refused', hostKeys: [], error: {code: gate.reason, message: gate.message}})
  }
  for (let i = 0; i < accepted.length; i += o.perLaunch) {
    const batch = accepted.slice(i, i + o.perLaunch)
    const signal = o.signal ? AbortSignal.any([o.signal, AbortSignal.timeout(o.timeoutMs)]) : AbortSignal.timeout(o.timeoutMs)
    try {
      const keys = await readBatch(batch, signal)
      for (const [j, path] of batch.entries()) {
        reports.set(path, keys[j] ? {path, status: 'audited', hostKeys: keys[j]!} : failedBox(path, new Error('no root filesystem this audit can mount directly (LVM or btrfs)')))
      }
    } catch (error) {
      if (o.signal?.aborted) throw error
      for (const path of batch) reports.set(path, failedBox(path, error))
    }
  }
  return paths.map((p) => reports.get(p)!)
}

/** Host keys per drive, in the order given; undefined where no root filesystem was found. */
async function readBatch(paths: string[], signal: AbortSignal): Promise<(HostKey[] | undefined)[]> {
  const g = await GuestfishSession.start({signal})
  try {
    for (const path of paths) await g.addDrive(path, {format: 'qcow2', readonly: true})
    await g.launch()
    const devices = await g.lines('list-devices')
    const found: (HostKey[] | undefined)[] = paths.map(() => undefined)
    const files = new GuestFiles(g)
    for (const root of await g.lines('inspect-os')) {
      const device = devices.includes(root) ? root : /^\/dev\/[a-z]+\d+$/.test(root) ? (await g.call('part-to-dev', root)).trim() : undefined
      const index = device === undefined ? -1 : devices.indexOf(device)
      if (index < 0) continue
      await g.call('mount-ro', root, '/')
      const keys: HostKey[] = []
      for (const path of await files.glob('/etc/ssh/ssh_host_*_key.pub')) {
        const info = fingerprint((await files.read(path, 64 * 1024)) ?? '')
        if (info) keys.push({file: path, ...info})
      }
      await g.call('umount-all')
      found[index] = [...(found[index] ?? []), ...keys]
    }
    await g.close()
    return found
  } catch (error) {
    await g.kill()
    throw error
  }
}

function failedBox(path: string, error: unknown): BoxReport {
  const code = isShienError(error) ? error.code : 'AUDIT_BOX_FAILED'
  return {path, status: 'failed', hostKeys: [], error: {code, message: error instanceof Error ? error.message : String(error)}}
}
