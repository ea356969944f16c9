import type {DumpXmlResult} from '../../src/virsh/inspect.js'
import {VmCommand, slotArg, vmFlags} from '../../src/client/vm/vm-command.js'

export default class VmDumpxml extends VmCommand {
  static override summary = "Print the libvirt XML of the domain in a slot."
  static override examples = ['<%= config.bin %> vm dumpxml 01']
  static override args = slotArg
  static override flags = vmFlags

  async run(): Promise<DumpXmlResult> {
    const {args, flags} = await this.parse(VmDumpxml)
    const {result} = await this.ieVirshOnSlot<DumpXmlResult>(this.plan(flags), args.slot, ['dumpxml', args.slot])
    if (!this.jsonEnabled()) this.log(result.xml.trimEnd())
    return result
  }
}
