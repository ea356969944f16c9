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
    const on = await this.ieVirshOnSlot<StartResult>(this.plan(flags), args.slot, ['start', args.slot])
    const result = withLaptopSsh(on.result, on.plan)
    if (!this.jsonEnabled()) this.log(describeStart(result))
    return result
  }
}
