/**
 * One image: the gate, then ONE read-only appliance launch that reads every fact the checks need,
 * then the checks. The image is added `readonly`, so libguestfs writes (journal replay included)
 * go to a throw-away overlay and the image itself is never written, even while its VM runs.
 */
import {isShienError, ShienError} from '../errors.js'
import {GuestfishSession} from '../harden/guestfish.js'
import {mountLinuxRoot} from '../harden/mount-root.js'
import {readGuestFacts, type GuestFacts} from './guest-facts.js'
import {GuestFiles} from './guest-files.js'
import {checkImage, hostKeysOf, type ImageRef} from './image-checks.js'
import {baseChangedFinding} from './base-check.js'
import {baseWritableFinding, type VettedChain} from './base-writable.js'
import {gateImage, type GateOutcome, type GateScope} from './image-gate.js'
import {findWeakPasswords} from './passwords.js'
import type {ImageTarget} from './targets.js'
import type {Finding, ImageReport} from './types.js'

export interface ImageAuditOptions {
  lists: {builtin: string[]; admin: string[]}
  timeoutMs: number
  signal?: AbortSignal
}

export interface ImageAudit {
  report: ImageReport
  findings: Finding[]
}

export async function auditImage(target: ImageTarget, o: ImageAuditOptions): Promise<ImageAudit> {
  const started = performance.now()
  const ref: ImageRef = {image: target.path, account: target.account, slot: target.slot}
  const base = {path: target.path, account: target.account, slot: target.slot, hostKeys: [], applianceLaunches: 0}
  const ms = () => Math.round(performance.now() - started)
  let gate: GateOutcome
  try {
    gate = await gateImage(target.path, target.scope)
  } catch (error) {
    return failed(base, error, ms())
  }
  // Gone since it was listed (a VM undefined meanwhile): nothing to report but that it was not read.
  if (!gate.ok && gate.reason === 'IMAGE_MISSING') return failed(base, new ShienError(gate.message, {code: gate.reason}), ms())
  if (!gate.ok) return {report: {...base, status: 'refused', durationMs: ms()}, findings: [notPlain(ref, gate)]}
  const {findings: baseFindings, unchecked} = await checkBase({...ref, image: target.path}, gate, target.scope, o.signal)
  // Like a gate that could not decide: not opened, and the all-clear not given.
  if (unchecked !== undefined) return {...failed(base, unchecked, ms()), findings: baseFindings}
  const signal = o.signal ? AbortSignal.any([o.signal, AbortSignal.timeout(o.timeoutMs)]) : AbortSignal.timeout(o.timeoutMs)
  try {
    const {distro, facts, launches} = await readImage(target.path, signal)
    const passwords = await findWeakPasswords(facts.shadow ?? [], o.lists, {signal})
    const notes = [
      ...(facts.shadow === undefined ? ['/etc/shadow is missing or not a regular file: passwords were not checked.'] : []),
      ...passwords.unverified.map((u) => `${u.user}'s password uses ${u.scheme}, which the host's libxcrypt cannot verify.`),
    ]
    return {
      report: {...base, status: 'audited', distro, hostKeys: hostKeysOf(facts), applianceLaunches: launches, durationMs: ms(), ...(notes.length > 0 ? {notes} : {})},
      findings: [...baseFindings, ...checkImage(ref, facts, passwords)],
    }
  } catch (error) {
    // Cancelling the whole audit stops it; a timeout or a broken image only fails this image.
    if (o.signal?.aborted) throw error
    const result = failed({...base, applianceLaunches: 1}, signal.aborted ? timedOut(o.timeoutMs) : error, ms())
    return {...result, findings: baseFindings}
  }
}

async function readImage(path: string, signal: AbortSignal): Promise<{distro: string; facts: GuestFacts; launches: number}> {
  const g = await GuestfishSession.start({signal})
  try {
    await g.addDrive(path, {format: 'qcow2', readonly: true})
    await g.launch()
    const mount = await mountLinuxRoot(g, {readonly: true})
    if (!mount.mounted) throw new ShienError(`No Linux root filesystem in ${path}: ${mount.reason}.`, {code: 'AUDIT_NO_OS', exit: 'badInput'})
    const facts = await readGuestFacts(new GuestFiles(g))
    await g.close()
    return {distro: mount.distro, facts, launches: g.launches}
  } catch (error) {
    await g.kill()
    throw error
  }
}

/** What is wrong with the published base of an overlay; `unchecked` says why its owner's write access could not be told. */
async function checkBase(ref: ImageRef & {image: string}, vetted: VettedChain, scope: GateScope, signal?: AbortSignal): Promise<{findings: Finding[]; unchecked?: unknown}> {
  const changed = await baseChangedFinding(ref, vetted.chain, scope.boxesDir)
  const findings = changed ? [changed] : []
  try {
    const writable = await baseWritableFinding(ref, vetted, {...scope, signal})
    return {findings: writable ? [...findings, writable] : findings}
  } catch (error) {
    return {findings, unchecked: error}
  }
}

function notPlain(ref: ImageRef, gate: Extract<GateOutcome, {ok: false}>): Finding {
  return {
    ...ref, code: 'image-not-plain', severity: 'high', message: `Not a plain qcow2 in its owner's folder, so not opened: ${gate.message}`,
    fix: gate.suggestion ?? 'Replace it with a standalone qcow2 owned by the account: qemu-img convert -O qcow2 IN OUT',
    detail: {reason: gate.reason},
  }
}

function timedOut(ms: number): ShienError {
  return new ShienError(`The image took longer than ${Math.round(ms / 1000)} s (audit.imageTimeoutMs).`, {code: 'AUDIT_TIMEOUT'})
}

function failed(base: Omit<ImageReport, 'status' | 'durationMs'>, error: unknown, durationMs: number): ImageAudit {
  const code = isShienError(error) ? error.code : 'AUDIT_FAILED'
  const message = error instanceof Error ? error.message : String(error)
  return {report: {...base, status: 'failed', durationMs, error: {code, message}}, findings: []}
}
