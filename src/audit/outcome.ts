import type {AuditSummary, Finding, Severity} from './types.js'

/**
 * Exit statuses of `shien audit`, stable for cron (`shien audit --json || mail ...`). They sit
 * above shien's general codes (1-6, 130), which keep their meaning when the audit itself cannot
 * run: 2 a wrong command line, 3 a named path that does not exist, 5 libvirt failed.
 */
export const AUDIT_EXIT = {
  /** Every target audited, nothing high (medium and low findings may exist). */
  clean: 0,
  /** At least one high-severity finding. Wins over `incomplete`: it must be acted on either way. */
  high: 10,
  /** Nothing high found, but some target could not be audited: the all-clear is not proven. */
  incomplete: 11,
} as const

/** Findings by severity, most severe first, then by target and code, so reports diff well. */
export function sortFindings(findings: Finding[]): Finding[] {
  const rank: Record<Severity, number> = {high: 0, medium: 1, low: 2}
  const key = (f: Finding) => `${f.account ?? '~'}\0${f.slot ?? ''}\0${f.image ?? f.domain ?? ''}\0${f.code}\0${f.user ?? ''}\0${f.file ?? ''}`
  return [...findings].sort((a, b) => rank[a.severity] - rank[b.severity] || key(a).localeCompare(key(b)))
}

export function summarize(findings: Finding[], incomplete: number): {summary: AuditSummary; exitCode: number} {
  const count = (s: Severity) => findings.filter((f) => f.severity === s).length
  const high = count('high')
  const outcome = high > 0 ? 'high' : incomplete > 0 ? 'incomplete' : 'clean'
  return {summary: {high, medium: count('medium'), low: count('low'), incomplete, outcome}, exitCode: AUDIT_EXIT[outcome]}
}
