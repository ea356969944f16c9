import {Args} from '@oclif/core'

import {ContainerCommand, containerFlags} from '../../src/client/container/container-command.js'

export default class ContainerRmi extends ContainerCommand {
  static override summary = 'Remove one of your images on the blade.'
  static override examples = ['<%= config.bin %> container rmi myimg']
  static override args = {image: Args.string({required: true, description: 'Image name (without your account prefix), NAME or NAME:TAG.'})}
  static override flags = containerFlags

  async run(): Promise<{name: string; image: string; action: string}> {
    const {args, flags} = await this.parse(ContainerRmi)
    const result = await this.ieDocker<{name: string; image: string; action: string}>(flags, ['rmi', args.image])
    if (!this.jsonEnabled()) this.log(`${result.name}: removed`)
    return result
  }
}
