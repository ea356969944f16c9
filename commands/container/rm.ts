import {Flags} from '@oclif/core'

import {describeAction, type ContainerAction} from '../../src/docker/lifecycle.js'
import {ContainerCommand, containerFlags, nameArg} from '../../src/client/container/container-command.js'

export default class ContainerRm extends ContainerCommand {
  static override summary = 'Remove one of your containers on the blade; its ports return to the pool.'
  static override examples = ['<%= config.bin %> container rm web', '<%= config.bin %> container rm --force web']
  static override args = nameArg
  static override flags = {...containerFlags, force: Flags.boolean({char: 'f', description: 'Stop it first if it is running.'})}

  async run(): Promise<ContainerAction> {
    const {args, flags} = await this.parse(ContainerRm)
    const result = await this.ieDocker<ContainerAction>(flags, ['rm', ...(flags.force ? ['-f'] : []), args.name])
    if (!this.jsonEnabled()) this.log(describeAction(result))
    return result
  }
}
