import {describeList, type ListResult} from '../../src/virsh/list.js'
import {withLaptopSsh} from '../../src/client/vm/laptop-view.js'
import {VmCommand, vmFlags} from '../../src/client/vm/vm-command.js'

export default class VmList extends VmCommand {
  static override summary = 'List your VMs on the blade, stopped ones included, with their state.'
  static override examples = ['<%= config.bin %> vm list', '<%= config.bin %> vm list --host blade1 --json']
  static override flags = vmFlags

  async run(): Promise<ListResult> {
    const {flags} = await this.parse(VmList)
    const plan = this.plan(flags)
    const result = withLaptopSsh(await this.ieVirsh<ListResult>(plan, ['list']), plan)
    if (!this.jsonEnabled()) this.log(describeList(result))
    return result
  }
}
