import {Flags} from '@oclif/core'

import {describeUndefine, type UndefineResult} from '../../src/virsh/lifecycle.js'
import {VmCommand, slotArg, vmFlags} from '../../src/client/vm/vm-command.js'

export default class VmUndefine extends VmCommand {
  static override summary = 'Delete the domain in a slot; its image stays unless --remove-image.'
  static override examples = ['<%= config.bin %> vm undefine 02', '<%= config.bin %> vm undefine 02 --remove-image']
  static override args = slotArg
  static override flags = {...vmFlags, 'remove-image': Flags.boolean({description: "Delete the slot's image too."})}

  async run(): Promise<UndefineResult> {
    const {args, flags} = await this.parse(VmUndefine)
    const extra = flags['remove-image'] ? ['--remove-image'] : []
    const {result} = await this.ieVirshOnSlot<UndefineResult>(this.plan(flags), args.slot, ['undefine', args.slot, ...extra])
    if (!this.jsonEnabled()) this.log(describeUndefine(result))
    return result
  }
}
