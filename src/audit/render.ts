/**
 * The human form of an audit: one table row per finding (account, slot, image or VM, severity,
 * finding, how to fix), what could not be audited, and a summary that matches the exit status.
 */
import {renderTable} from '../text-table.js'
import type {AuditResult, Finding} from './types.js'
import {AUDIT_EXIT} from './outcome.js'

const HEADERS = ['ACCOUNT', 'SLOT', 'TARGET', 'SEVERITY', 'FINDING', 'HOW TO FIX']

/**
 * `root` shortens image paths under the storage root to what follows `users/`; with `width`
 * (the terminal's), the finding and how to fix it wrap within their columns.
 */
export function renderAudit(r: AuditResult, root?: string, width?: number): string {
  const lines: string[] = []
  if (r.findings.length === 0) lines.push('No findings.')
  else lines.push(renderTable(HEADERS, r.findings.map((f) => row(f, root)), {width, wrap: [4, 5]}))
  const problems = [
    ...(r.images ?? []).filter((i) => i.status === 'failed').map((i) => `  ${i.path}: ${i.error?.message ?? 'failed'}`),
    ...(r.boxes ?? []).filter((b) => b.status === 'failed').map((b) => `  box ${b.path}: ${b.error?.message ?? 'failed'}`),
    ...(r.domains ?? []).filter((d) => d.status !== 'audited').map((d) => `  ${d.name}: ${d.status}${d.error ? `: ${d.error.message}` : ''}`),
  ]
  if (problems.length > 0) lines.push('', 'Not (fully) audited:', ...problems)
  lines.push('', summaryLine(r))
  return lines.join('\n')
}

function row(f: Finding, root?: string): string[] {
  const target = f.domain ?? (f.image && root && f.image.startsWith(`${root}/users/`) ? f.image.slice(root.length + 7) : f.image ?? '-')
  const what = f.user && !f.message.includes(f.user) ? `${f.user}: ${f.message}` : f.message
  return [f.account ?? '-', f.slot ?? '-', target, f.severity, what, f.fix]
}

function summaryLine(r: AuditResult): string {
  const s = r.summary
  const targets = r.mode === 'images'
    ? `${r.images?.length ?? 0} image(s) (${count(r.images, 'audited')} audited, ${count(r.images, 'refused')} refused, ${count(r.images, 'failed')} failed), ${count(r.boxes, 'audited')} published box(es) compared`
    : `${r.domains?.length ?? 0} running domain(s) (${(r.domains ?? []).filter((d) => d.status === 'audited').length} fully audited)`
  const verdict = s.outcome === 'high' ? `exit ${AUDIT_EXIT.high}: high-severity findings` : s.outcome === 'incomplete' ? `exit ${AUDIT_EXIT.incomplete}: some targets could not be audited` : `exit ${AUDIT_EXIT.clean}: nothing high`
  return `Audited ${targets} in ${(r.durationMs / 1000).toFixed(1)} s: ${s.high} high, ${s.medium} medium, ${s.low} low; ${verdict}.`
}

function count(xs: {status: string}[] | undefined, status: string): number {
  return (xs ?? []).filter((x) => x.status === status).length
}
