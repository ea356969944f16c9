import {Args, Flags} from '@oclif/core'

import {adminInputs, openClusterAdmin, parseVmName} from '../../src/admin/cluster-admin.js'
import {describeMove} from '../../src/admin/drain.js'
import {moveSlot, type MoveReport} from '../../src/admin/migrate.js'
import {DEFAULT_CONFIG_PATH} from '../../src/config/blade-config.js'
import {ShienCommand} from '../../src/ui/base-command.js'

export default class AdminMigrate extends ShienCommand {
  static override summary = "Move a student's VM to another blade of the cluster, live if it runs."
  static override description = `Run as root on any blade of the cluster (docs/cluster.md). A running VM is migrated live with
libvirt (virsh migrate --live --p2p --persistent --undefinesource to the destination's
migrationUri): the image stays on the shared storage, only the memory travels, and the VM keeps
its SSH port, its forward now on the destination's listen address. A stopped VM is defined on the
destination and undefined where it was. The slot's record moves once libvirt has moved the VM; a
failed migration leaves the VM running where it was and the record unchanged (MIGRATION_FAILED).`
  static override examples = ['sudo <%= config.bin %> admin migrate e195701-01 --to blade2', 'sudo <%= config.bin %> admin migrate e195701-01 --to blade2 --json']
  static override args = {
    vm: Args.string({description: 'The VM: ACCOUNT-SLOT, as shien vm list names it (e195701-01).', required: true}),
  }
  static override flags = {
    to: Flags.string({description: 'The blade to move it to.', required: true}),
    config: Flags.string({description: 'The blade configuration.', default: DEFAULT_CONFIG_PATH, hidden: true}),
  }

  async run(): Promise<MoveReport> {
    const {args, flags} = await this.parse(AdminMigrate)
    const {account, slot} = parseVmName(args.vm)
    const ctx = await openClusterAdmin('migrate', adminInputs(flags.config, this.abort.signal))
    const report = await moveSlot(ctx, account, slot, flags.to)
    if (!this.jsonEnabled()) this.log(describeMove(report))
    return report
  }
}
