import {Flags} from '@oclif/core'

import {BladeCommand} from '../../src/blade/blade-command.js'
import type {StepFlags, StepResult} from '../../src/protocol/blade-steps.js'
import {bladeContext} from '../../src/blade/caller.js'
import {commitUpload} from '../../src/blade/incoming.js'

export default class BladeCommit extends BladeCommand {
  static override description = 'Check a finished upload\'s size and rename it into place.'

  static override flags = {
    name: Flags.string({required: true, description: 'Box name in incoming/.'}),
    size: Flags.integer({required: true, min: 0, description: 'Bytes sent.'}),
  }

  async run(): Promise<StepResult<'commit'>> {
    const {flags} = await this.parse(BladeCommit)
    this.checkProtocol(flags.protocol)
    flags satisfies StepFlags<'commit'>
    return commitUpload(bladeContext(), flags.name, flags.size)
  }
}
