import {Args, Flags} from '@oclif/core'

import {adminInputs, openClusterAdmin} from '../../src/admin/cluster-admin.js'
import {describeRecover, recoverBlade, type RecoverReport} from '../../src/admin/drain.js'
import {DEFAULT_CONFIG_PATH} from '../../src/config/blade-config.js'
import {ShienError} from '../../src/errors.js'
import {ShienCommand} from '../../src/ui/base-command.js'

export default class AdminRecover extends ShienCommand {
  static override summary = 'Start the VMs of a blade that is down on the other blades.'
  static override description = `Run as root on another blade of the cluster (docs/cluster.md), once you have confirmed the
blade is down (powered off, or cut from the shared storage): --yes says so, or answer the
question on a terminal. recover also asks the blade's libvirtd and refuses while it answers
(BLADE_ANSWERS): its VMs may be running, and starting them elsewhere would run one image twice.
Each VM recorded on the blade is defined from the XML kept on the shared storage on the blade
placement picks (or --to BLADE), its record moved, and started. The dead blade is marked drained;
when it is back, undefine its stale VMs there, then shien admin undrain it.`
  static override examples = ['sudo <%= config.bin %> admin recover blade2 --yes', 'sudo <%= config.bin %> admin recover blade2 --yes --to blade3 --json']
  static override args = {
    blade: Args.string({description: 'The blade that is down.', required: true}),
  }
  static override flags = {
    yes: Flags.boolean({description: 'Confirm that the blade is down (needed where there is no terminal to ask on).'}),
    to: Flags.string({description: 'Start every VM on this blade rather than where placement puts each.'}),
    config: Flags.string({description: 'The blade configuration.', default: DEFAULT_CONFIG_PATH, hidden: true}),
  }

  async run(): Promise<RecoverReport> {
    const {args, flags} = await this.parse(AdminRecover)
    if (!flags.yes && !(await this.confirmDown(args.blade))) {
      throw new ShienError(`recover starts ${args.blade}'s VMs elsewhere, which is safe only when ${args.blade} is down; it was not confirmed, so nothing changed.`, {
        code: 'NOT_CONFIRMED',
        exit: 'refused',
        suggestions: [`Once you have checked that ${args.blade} is powered off or cut from the storage: sudo shien admin recover ${args.blade} --yes`],
      })
    }
    const ctx = await openClusterAdmin('recover', adminInputs(flags.config, this.abort.signal))
    const report = await recoverBlade(ctx, args.blade, {to: flags.to})
    if (!this.jsonEnabled()) this.log(describeRecover(report))
    if (report.failed.length > 0 || report.recovered.some((v) => !v.started)) process.exitCode = 6
    return report
  }

  private async confirmDown(blade: string): Promise<boolean> {
    if (this.jsonEnabled() || !(process.stdin.isTTY && process.stderr.isTTY)) return false
    const {confirm} = await import('@inquirer/prompts')
    return confirm({message: `Is ${blade} down (powered off, or cut from the shared storage)?`, default: false}, {output: process.stderr})
  }
}
