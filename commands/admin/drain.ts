import {Args, Flags} from '@oclif/core'

import {adminInputs, openClusterAdmin} from '../../src/admin/cluster-admin.js'
import {describeDrain, drainBlade, type DrainReport} from '../../src/admin/drain.js'
import {DEFAULT_CONFIG_PATH} from '../../src/config/blade-config.js'
import {ShienCommand} from '../../src/ui/base-command.js'

export default class AdminDrain extends ShienCommand {
  static override summary = 'Empty a blade for maintenance: its VMs move to the others, live where they run.'
  static override description = `Run as root on any blade of the cluster (docs/cluster.md). The blade is marked drained, so
placement (shien push) gives it no new VM, then every VM recorded on it moves to the blade
placement picks for it at that moment (or --to BLADE), as shien admin migrate moves one. Each
move is reported; a VM that cannot move stays where it was and is listed, and the command exits 6.
The mark stays until shien admin undrain BLADE.`
  static override examples = ['sudo <%= config.bin %> admin drain blade2', 'sudo <%= config.bin %> admin drain blade2 --to blade3 --json']
  static override args = {
    blade: Args.string({description: 'The blade to empty.', required: true}),
  }
  static override flags = {
    to: Flags.string({description: 'Move every VM to this blade rather than where placement puts each.'}),
    config: Flags.string({description: 'The blade configuration.', default: DEFAULT_CONFIG_PATH, hidden: true}),
  }

  async run(): Promise<DrainReport> {
    const {args, flags} = await this.parse(AdminDrain)
    const ctx = await openClusterAdmin('drain', adminInputs(flags.config, this.abort.signal))
    const report = await drainBlade(ctx, args.blade, {to: flags.to})
    if (!this.jsonEnabled()) this.log(describeDrain(report))
    if (report.failed.length > 0) process.exitCode = 6
    return report
  }
}
