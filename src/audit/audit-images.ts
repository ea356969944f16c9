/**
 * `shien audit` without --live: every target image audited (at most `concurrency` appliances at
 * once, one launch per image), published boxes read for their host keys, then the checks that
 * need all images together (shared host keys).
 */
import {getentUid} from '../privileged/caller.js'
import {auditImage, type ImageAudit} from './audit-image.js'
import {readBoxes} from './boxes.js'
import type {AuditConfig} from './config.js'
import {hostKeyFindings} from './host-keys.js'
import {sortFindings, summarize} from './outcome.js'
import pMap from 'p-map'
import {describeTarget, publishedBoxes, type ImageTarget} from './targets.js'
import type {AuditResult, BoxReport, ImageReport} from './types.js'

export interface ImagesPlan {
  /** Image paths, as found by storageImages or namedImages. */
  images: string[]
  /** `<root>/boxes`: allowed backing files, and the published boxes compared for host keys. */
  boxesDir: string
  config: AuditConfig
  lists: {builtin: string[]; admin: string[]}
}

export type AuditEvent =
  | {type: 'image:start'; path: string}
  | {type: 'image:end'; report: ImageReport; findings: number}
  | {type: 'boxes:start'; count: number}
  | {type: 'boxes:end'; boxes: BoxReport[]}

export interface AuditRunOptions {
  signal?: AbortSignal
  onEvent?: (event: AuditEvent) => void
  lookupUid?: (account: string) => Promise<number | undefined>
}

type Task = {kind: 'image'; target: ImageTarget} | {kind: 'boxes'; paths: string[]}

export async function auditImages(plan: ImagesPlan, o: AuditRunOptions = {}): Promise<AuditResult> {
  const started = performance.now()
  const startedAt = new Date().toISOString()
  const emit = o.onEvent ?? (() => undefined)
  const targets = await describeAll(plan, o.lookupUid ?? getentUid)
  const boxes = plan.config.boxes.max > 0 ? (await publishedBoxes(plan.boxesDir, plan.config.boxes.max)).read : []
  // Boxes go last: by the time they start, every image has at least started.
  const tasks: Task[] = [...targets.map((target) => ({kind: 'image' as const, target})), ...(boxes.length > 0 ? [{kind: 'boxes' as const, paths: boxes}] : [])]
  const audits: ImageAudit[] = []
  let boxReports: BoxReport[] = []
  await pMap(tasks, async (task) => {
    o.signal?.throwIfAborted()
    if (task.kind === 'boxes') {
      // Only worth a launch when some image may have host keys to compare.
      if (audits.length === targets.length && !audits.some((a) => a.report.status === 'audited')) return
      emit({type: 'boxes:start', count: task.paths.length})
      boxReports = await readBoxes(task.paths, {boxesDir: plan.boxesDir, perLaunch: plan.config.boxes.perLaunch, timeoutMs: plan.config.imageTimeoutMs, signal: o.signal})
      emit({type: 'boxes:end', boxes: boxReports})
      return
    }
    emit({type: 'image:start', path: task.target.path})
    const audit = await auditImage(task.target, {lists: plan.lists, timeoutMs: plan.config.imageTimeoutMs, signal: o.signal})
    audits.push(audit)
    emit({type: 'image:end', report: audit.report, findings: audit.findings.length})
  })
  const images = targets.map((t) => audits.find((a) => a.report.path === t.path)!.report)
  const findings = sortFindings([
    ...audits.flatMap((a) => a.findings),
    ...hostKeyFindings(images.filter((r) => r.status === 'audited'), boxReports.filter((b) => b.status === 'audited')),
  ])
  const incomplete = images.filter((r) => r.status === 'failed').length + boxReports.filter((b) => b.status === 'failed').length
  const {summary, exitCode} = summarize(findings, incomplete)
  return {mode: 'images', startedAt, durationMs: Math.round(performance.now() - started), summary, images, boxes: boxReports, findings, exitCode}
}

/** Targets with account, slot and scope; the same file named twice is audited once. */
async function describeAll(plan: ImagesPlan, lookupUid: (account: string) => Promise<number | undefined>): Promise<ImageTarget[]> {
  const uids = new Map<string, Promise<number | undefined>>()
  const cachedLookup = (account: string) => {
    if (!uids.has(account)) uids.set(account, lookupUid(account))
    return uids.get(account)!
  }
  const targets: ImageTarget[] = []
  for (const raw of plan.images) {
    const target = await describeTarget(raw, plan.boxesDir, cachedLookup)
    if (!targets.some((t) => t.path === target.path)) targets.push(target)
  }
  return targets
}
