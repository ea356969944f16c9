import {describeImages, type ImageInfo} from '../../src/docker/images.js'
import {ContainerCommand, containerFlags} from '../../src/client/container/container-command.js'

export default class ContainerImages extends ContainerCommand {
  static override summary = 'List the images you may run on the blade: the shared ones and your own.'
  static override examples = ['<%= config.bin %> container images']
  static override flags = containerFlags

  async run(): Promise<{images: ImageInfo[]}> {
    const {flags} = await this.parse(ContainerImages)
    const result = await this.ieDocker<{images: ImageInfo[]}>(flags, ['images'])
    if (!this.jsonEnabled()) this.log(describeImages(result))
    return result
  }
}
