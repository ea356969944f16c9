import {describeStart, type StartResult} from '../../src/virsh/lifecycle.js'
import {withLaptopSsh} from '../../src/client/vm/laptop-view.js'
import {VmCommand, slotArg, vmFlags} from '../../src/client/vm/vm-command.js'

export default class VmStart extends VmCommand {
  static override summary = 'Boot the VM in a slot on the blade.'
  static override examples = ['<%= config.bin %> vm start 01']
  static override args = slotArg
  static override flags = vmFlags

  async run(): Promise<StartResult> {
    const {args, flags} = await this.parse(VmStart)
    const plan = this.plan(flags)
    const result = withLaptopSsh(await this.ieVirsh<StartResult>(plan, ['start', args.slot]), plan)
    if (!this.jsonEnabled()) this.log(describeStart(result))
    return result
  }
}
