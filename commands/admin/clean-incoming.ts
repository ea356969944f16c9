import {Flags} from '@oclif/core'

import {cleanIncoming, describeCleanIncoming, type CleanIncomingReport} from '../../src/admin/clean-incoming.js'
import {DEFAULT_CONFIG_PATH} from '../../src/config/blade-config.js'
import {ShienCommand} from '../../src/ui/base-command.js'

export default class AdminCleanIncoming extends ShienCommand {
  static override summary = "Remove uploads older than a number of days from every student's incoming/."
  static override description = `Boxes, deltas and unfinished uploads wait in <storageRoot>/users/<account>/incoming/ for a
push to resume or take them. This removes those older than push.keepIncomingDays (7 by default)
or --older-than DAYS, for every account: each account's files are removed by a process running
as that account, which never follows a link. --dry-run lists them and removes nothing.`
  static override examples = ['sudo <%= config.bin %> admin clean-incoming --dry-run', 'sudo <%= config.bin %> admin clean-incoming --older-than 3 --json']
  static override flags = {
    'older-than': Flags.integer({min: 0, description: 'Remove uploads last changed more than this many days ago (default: push.keepIncomingDays).'}),
    'dry-run': Flags.boolean({description: 'List what would be removed, and remove nothing.'}),
    config: Flags.string({description: 'The blade configuration.', default: DEFAULT_CONFIG_PATH, hidden: true}),
  }

  async run(): Promise<CleanIncomingReport> {
    const {flags} = await this.parse(AdminCleanIncoming)
    const report = await cleanIncoming({
      configPath: flags.config,
      uid: process.getuid?.() ?? -1,
      olderThanDays: flags['older-than'],
      dryRun: flags['dry-run'],
      signal: this.abort.signal,
    })
    if (!this.jsonEnabled()) this.log(describeCleanIncoming(report))
    if (report.problems.length > 0) process.exitCode = 6
    return report
  }
}
