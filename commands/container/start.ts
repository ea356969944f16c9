import {ContainerActionCommand} from '../../src/client/container/action-command.js'
import {containerFlags, nameArg} from '../../src/client/container/container-command.js'

export default class ContainerStart extends ContainerActionCommand {
  static override summary = 'Start one of your containers on the blade.'
  static override examples = ['<%= config.bin %> container start web']
  static override args = nameArg
  static override flags = containerFlags

  protected ieDockerArgs(name: string): string[] {
    return ['start', name]
  }
}
