/**
 * `shien admin clean-incoming`: every student's uploads (boxes, deltas, parts) older than
 * push.keepIncomingDays, or `--older-than DAYS`, removed from `users/<account>/incoming/`.
 *
 * It runs as root over folders students own, so root never touches a student's entry itself:
 * for each account, `find` runs as the folder's owner (its uid and gid, no other group),
 * never following a link (`-P`, regular files only), and removes what it lists. A student who
 * swaps a folder or a file for a link reaches only what the student could remove anyway.
 */
import {lstat, readdir, realpath} from 'node:fs/promises'
import {join} from 'node:path'

import {pushSettings} from '../config/blade-config.js'
import {userPaths} from '../config/storage-layout.js'
import {ShienError} from '../errors.js'
import {ACCOUNT_PATTERN} from '../names.js'
import {loadTrustedConfig} from '../privileged/trusted-config.js'
import {firstErrorLine, runTool} from '../process/run.js'

export interface CleanIncomingInputs {
  configPath: string
  uid: number
  /** Default: push.keepIncomingDays of the blade's configuration. */
  olderThanDays?: number
  dryRun: boolean
  signal: AbortSignal
}

/** One upload removed (or, with --dry-run, that would be). */
export interface RemovedUpload {
  account: string
  file: string
  bytes: number
  modifiedAt: string
}

export interface CleanIncomingReport {
  olderThanDays: number
  dryRun: boolean
  removed: RemovedUpload[]
  bytes: number
  /** Accounts whose folder was left alone, and why. */
  problems: Array<{account: string; reason: string}>
}

/** Checks it runs as root, then cleans every account's incoming/ under the storage root. */
export async function cleanIncoming(input: CleanIncomingInputs): Promise<CleanIncomingReport> {
  if (input.uid !== 0) {
    throw new ShienError('shien admin clean-incoming removes files in every student\'s folder: it must run as root.', {
      code: 'NOT_ROOT',
      exit: 'refused',
      suggestions: ['On the blade: sudo shien admin clean-incoming --dry-run'],
    })
  }
  const config = loadTrustedConfig(input.configPath)
  const days = input.olderThanDays ?? pushSettings(config).keepIncomingDays
  const root = await realpath(config.storageRoot).catch(() => {
    throw new ShienError(`The storage root ${config.storageRoot} is not there.`, {code: 'STORAGE_MISSING', exit: 'remote', suggestions: ['Mount the shared storage first.']})
  })
  const report: CleanIncomingReport = {olderThanDays: days, dryRun: input.dryRun, removed: [], bytes: 0, problems: []}
  const accounts = await readdir(join(root, 'users')).catch(() => [] as string[])
  for (const account of accounts.sort()) {
    if (!ACCOUNT_PATTERN.test(account)) continue
    const problem = await cleanAccount(root, account, days, input, report)
    if (problem) report.problems.push({account, reason: problem})
  }
  report.bytes = report.removed.reduce((sum, r) => sum + r.bytes, 0)
  return report
}

/** One account's incoming/, as its owner; returns why it was left alone, if it was. */
async function cleanAccount(root: string, account: string, days: number, input: CleanIncomingInputs, report: CleanIncomingReport): Promise<string | undefined> {
  const paths = userPaths(root, account)
  // users/ is root's, so this entry cannot be swapped under us; what is inside it can.
  const home = await lstat(paths.home)
  if (!home.isDirectory()) return `${paths.home} is not a folder (a symlink?); left alone`
  if (home.uid === 0) return `${paths.home} is owned by root; left alone`
  const args = ['-P', paths.incoming, '-mindepth', '1', '-maxdepth', '1', '-type', 'f', '-mmin', `+${days * 24 * 60}`, '-printf', '%s %T@ %f\\0']
  const r = await runTool('find', input.dryRun ? args : [...args, '-delete'], {as: {uid: home.uid, gid: home.gid}, signal: input.signal})
  for (const line of r.stdout.split('\0').filter(Boolean)) {
    const [bytes, mtime, ...name] = line.split(' ')
    report.removed.push({account, file: name.join(' '), bytes: Number(bytes), modifiedAt: new Date(Number(mtime) * 1000).toISOString()})
  }
  if (r.exitCode === 0 || /No such file or directory/.test(r.stderr)) return undefined
  return `find as uid ${home.uid} failed: ${firstErrorLine(r.stderr)}`
}

/** The report for people. */
export function describeCleanIncoming(report: CleanIncomingReport): string {
  const verb = report.dryRun ? 'Would remove' : 'Removed'
  const lines = report.removed.map((r) => `  ${r.account}/incoming/${r.file}  ${r.bytes} bytes, last changed ${r.modifiedAt}`)
  const head = `${verb} ${report.removed.length} upload(s) older than ${report.olderThanDays} day(s), ${report.bytes} bytes.`
  const problems = report.problems.map((p) => `  left alone: ${p.account}: ${p.reason}`)
  return [head, ...lines, ...problems].join('\n')
}
