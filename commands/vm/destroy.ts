import {describeDestroy, type DestroyResult} from '../../src/virsh/lifecycle.js'
import {VmCommand, slotArg, vmFlags} from '../../src/client/vm/vm-command.js'

export default class VmDestroy extends VmCommand {
  static override summary = 'Power the VM in a slot off at once (like pulling the plug).'
  static override examples = ['<%= config.bin %> vm destroy 01']
  static override args = slotArg
  static override flags = vmFlags

  async run(): Promise<DestroyResult> {
    const {args, flags} = await this.parse(VmDestroy)
    const {result} = await this.ieVirshOnSlot<DestroyResult>(this.plan(flags), args.slot, ['destroy', args.slot])
    if (!this.jsonEnabled()) this.log(describeDestroy(result))
    return result
  }
}
