import {describeAction, type ContainerAction} from '../../src/docker/lifecycle.js'
import {ContainerCommand, containerFlags, nameArg} from '../../src/client/container/container-command.js'

export default class ContainerStart extends ContainerCommand {
  static override summary = 'Start one of your containers on the blade.'
  static override examples = ['<%= config.bin %> container start web']
  static override args = nameArg
  static override flags = containerFlags

  async run(): Promise<ContainerAction> {
    const {args, flags} = await this.parse(ContainerStart)
    const result = await this.ieDocker<ContainerAction>(flags, ['start', args.name])
    if (!this.jsonEnabled()) this.log(describeAction(result))
    return result
  }
}
