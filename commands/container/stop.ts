import {describeAction, type ContainerAction} from '../../src/docker/lifecycle.js'
import {ContainerCommand, containerFlags, nameArg} from '../../src/client/container/container-command.js'

export default class ContainerStop extends ContainerCommand {
  static override summary = 'Stop one of your containers on the blade.'
  static override examples = ['<%= config.bin %> container stop web']
  static override args = nameArg
  static override flags = containerFlags

  async run(): Promise<ContainerAction> {
    const {args, flags} = await this.parse(ContainerStop)
    const result = await this.ieDocker<ContainerAction>(flags, ['stop', args.name])
    if (!this.jsonEnabled()) this.log(describeAction(result))
    return result
  }
}
