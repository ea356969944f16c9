/**
 * The shape of `shien audit --json`: a contract for cron jobs and dashboards (docs/audit.md
 * documents every field). Plain JSON only: no Buffers, no Maps, no secrets.
 */

/** `high` sets the exit status (cron mails on it); `medium` and `low` are reported only. */
export type Severity = 'high' | 'medium' | 'low'

export const SEVERITIES: readonly Severity[] = ['high', 'medium', 'low']

/** Stable finding codes; docs/audit.md lists what each means and its `detail` fields. */
export type FindingCode =
  | 'image-not-plain'
  | 'insecure-key'
  | 'weak-password'
  | 'weak-password-locked'
  | 'nopasswd-sudo'
  | 'sshd-password-auth'
  | 'sshd-root-login'
  | 'shared-host-key'
  | 'box-host-key'
  | 'private-key-left'
  | 'world-writable'
  | 'base-changed'
  | 'base-writable'
  | 'live-insecure-key'
  | 'live-weak-password'
  | 'live-password-auth'
  | 'live-open-port'

/** One weakness in one image or running VM, with what to do about it. */
export interface Finding {
  code: FindingCode
  severity: Severity
  /** Absolute path of the image (offline audit). */
  image?: string
  /** libvirt domain name (live audit). */
  domain?: string
  /** Blade account owning the image or VM, when its path or name says so. */
  account?: string
  slot?: string
  /** The account inside the guest the finding is about. */
  user?: string
  /** The guest file the finding is about. */
  file?: string
  /** One line for people. */
  message: string
  /** One line: how to fix it. */
  fix: string
  /** Code-specific facts (key type, fingerprint, hash scheme, other images...). */
  detail?: Record<string, string | number | boolean | string[] | number[]>
}

/** One SSH host key, by OpenSSH fingerprint (`SHA256:...`, as `ssh-keygen -l` prints it). */
export interface HostKey {
  file: string
  type: string
  fingerprint: string
}

/** Where an image (or published box) ended up. */
export type ImageStatus =
  /** Read in one appliance launch; its findings are complete. */
  | 'audited'
  /** Not opened: not a plain qcow2 in its owner's folder (an `image-not-plain` finding says why). */
  | 'refused'
  /** Could not be read (no Linux root, guestfish failed, timed out): the audit is incomplete. */
  | 'failed'

export interface ImageReport {
  path: string
  account?: string
  slot?: string
  status: ImageStatus
  distro?: string
  hostKeys: HostKey[]
  /** Appliance launches spent on this image: 1 when audited, 0 when refused. */
  applianceLaunches: number
  durationMs: number
  /** What could not be checked in an audited image (e.g. a hash scheme libxcrypt does not know). */
  notes?: string[]
  error?: {code: string; message: string}
}

/** A published base box (a `box.img` under `<root>/boxes/`), read for its host keys only. */
export interface BoxReport {
  path: string
  status: ImageStatus
  hostKeys: HostKey[]
  error?: {code: string; message: string}
}

export type PortState = 'open' | 'closed' | 'filtered'

/** One running domain, probed over the network the way a stranger would. */
export interface DomainReport {
  name: string
  account?: string
  slot?: string
  /** `audited`: every planned attempt ran; `partial`: the time budget ran out; `unreachable`: no SSH. */
  status: 'audited' | 'partial' | 'unreachable'
  /** How libvirt says the domain is reached: forwarded host ports, and interface addresses. */
  reachedVia: {forwards: {guestPort: number; host: string; port: number}[]; addresses: string[]}
  /** Configured ports and what a connection found; ports with no endpoint are not listed. */
  ports: {port: number; state: PortState}[]
  /** sshd's offered authentication methods and host key, when it answered. */
  ssh?: {methods: string[]; hostKey?: string}
  /** Login attempts made (keys and passwords together). */
  attempts: number
  durationMs: number
  error?: {code: string; message: string}
}

export interface AuditSummary {
  high: number
  medium: number
  low: number
  /** Targets (images or domains) whose audit could not be completed. */
  incomplete: number
  /** What the exit status says: see AUDIT_EXIT. */
  outcome: 'clean' | 'high' | 'incomplete'
}

export interface AuditResult {
  mode: 'images' | 'live'
  startedAt: string
  durationMs: number
  summary: AuditSummary
  images?: ImageReport[]
  boxes?: BoxReport[]
  domains?: DomainReport[]
  findings: Finding[]
  exitCode: number
}
