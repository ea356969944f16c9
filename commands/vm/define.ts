import {Flags} from '@oclif/core'

import {describeDefine, type DefineResult} from '../../src/virsh/define.js'
import {VmCommand, slotArg, vmFlags} from '../../src/client/vm/vm-command.js'

export default class VmDefine extends VmCommand {
  static override summary = "Create the domain for a slot from your image on the blade and an admin's template."
  static override examples = ['<%= config.bin %> vm define 01', '<%= config.bin %> vm define 02 --template kernel']
  static override args = slotArg
  static override flags = {...vmFlags, template: Flags.string({description: 'A template you may use (see shien vm templates).'})}

  async run(): Promise<DefineResult> {
    const {args, flags} = await this.parse(VmDefine)
    const extra = flags.template === undefined ? [] : ['--template', flags.template]
    const result = await this.ieVirsh<DefineResult>(this.plan(flags), ['define', args.slot, ...extra])
    if (!this.jsonEnabled()) this.log(describeDefine(result))
    return result
  }
}
