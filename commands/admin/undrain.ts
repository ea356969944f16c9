import {Args, Flags} from '@oclif/core'

import {adminInputs, openClusterAdmin} from '../../src/admin/cluster-admin.js'
import {describeUndrain, undrainBlade, type UndrainReport} from '../../src/admin/drain.js'
import {DEFAULT_CONFIG_PATH} from '../../src/config/blade-config.js'
import {ShienCommand} from '../../src/ui/base-command.js'

export default class AdminUndrain extends ShienCommand {
  static override summary = 'Give a drained blade back to placement.'
  static override description = `Run as root on any blade of the cluster (docs/cluster.md). Removes the blade's drain mark, so
shien push places VMs there again. The VMs drain moved stay where they went.`
  static override examples = ['sudo <%= config.bin %> admin undrain blade2']
  static override args = {
    blade: Args.string({description: 'The drained blade.', required: true}),
  }
  static override flags = {
    config: Flags.string({description: 'The blade configuration.', default: DEFAULT_CONFIG_PATH, hidden: true}),
  }

  async run(): Promise<UndrainReport> {
    const {args, flags} = await this.parse(AdminUndrain)
    const ctx = await openClusterAdmin('undrain', adminInputs(flags.config, this.abort.signal))
    const report = await undrainBlade(ctx, args.blade)
    if (!this.jsonEnabled()) this.log(describeUndrain(report))
    return report
  }
}
