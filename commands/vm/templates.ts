import {describeTemplates, type TemplatesResult} from '../../src/virsh/inspect.js'
import {VmCommand, vmFlags} from '../../src/client/vm/vm-command.js'

export default class VmTemplates extends VmCommand {
  static override summary = 'List the domain templates you may use with shien vm define --template.'
  static override flags = vmFlags

  async run(): Promise<TemplatesResult> {
    const {flags} = await this.parse(VmTemplates)
    const result = await this.ieVirsh<TemplatesResult>(this.plan(flags), ['templates'])
    if (!this.jsonEnabled()) this.log(describeTemplates(result))
    return result
  }
}
