import {describePs} from '../../src/docker/lifecycle.js'
import type {ContainerInfo} from '../../src/docker/own.js'
import {ContainerCommand, containerFlags} from '../../src/client/container/container-command.js'

export default class ContainerPs extends ContainerCommand {
  static override summary = 'List your containers on the blade, stopped ones included, with their host ports.'
  static override examples = ['<%= config.bin %> container ps', '<%= config.bin %> container ps --json']
  static override flags = containerFlags

  async run(): Promise<{containers: ContainerInfo[]}> {
    const {flags} = await this.parse(ContainerPs)
    const result = await this.ieDocker<{containers: ContainerInfo[]}>(flags, ['ps'])
    if (!this.jsonEnabled()) this.log(describePs(result))
    return result
  }
}
