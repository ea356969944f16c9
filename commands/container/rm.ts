import {Flags} from '@oclif/core'

import {ContainerActionCommand} from '../../src/client/container/action-command.js'
import {containerFlags, nameArg} from '../../src/client/container/container-command.js'

export default class ContainerRm extends ContainerActionCommand {
  static override summary = 'Remove one of your containers on the blade; its ports return to the pool.'
  static override examples = ['<%= config.bin %> container rm web', '<%= config.bin %> container rm --force web']
  static override args = nameArg
  static override flags = {...containerFlags, force: Flags.boolean({char: 'f', description: 'Stop it first if it is running.'})}

  protected ieDockerArgs(name: string, flags: {force?: boolean}): string[] {
    return ['rm', ...(flags.force ? ['-f'] : []), name]
  }
}
