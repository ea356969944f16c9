import {describeVmList, listVms, unreachableLines, type VmListResult} from '../../src/client/vm/cluster-list.js'
import {VmCommand, vmFlags} from '../../src/client/vm/vm-command.js'

export default class VmList extends VmCommand {
  static override summary = 'List your VMs on the blade, stopped ones included, with their state.'
  static override description = `On a blade of a cluster (a cluster section in its /etc/shien/config.json), every blade is
asked at once and each VM is shown once, with the blade its slot is recorded on (BLADE; "blade" in
--json). A blade that does not answer is named on stderr ("blades" in --json, reachable false and
why) and the others are still listed: the exit code is 0 when at least the blade you named answered.`
  static override examples = ['<%= config.bin %> vm list', '<%= config.bin %> vm list --host blade1 --json']
  static override flags = vmFlags

  async run(): Promise<VmListResult> {
    const {flags} = await this.parse(VmList)
    const plan = this.plan(flags)
    const result = await listVms(plan, this.vmDeps(plan))
    if (!this.jsonEnabled()) {
      for (const line of unreachableLines(result)) this.logToStderr(line)
      this.log(describeVmList(result))
    }
    return result
  }
}
