import {Flags} from '@oclif/core'

import {BladeCommand} from '../../src/blade/blade-command.js'
import type {StepFlags, StepResult} from '../../src/protocol/blade-steps.js'
import {bladeContext} from '../../src/blade/caller.js'
import {commitUpload} from '../../src/blade/incoming.js'

export default class BladeCommit extends BladeCommand {
  static override description = 'Check a finished upload\'s size and rename it into place.'

  static override flags = {
    name: Flags.string({required: true, description: 'Upload name in incoming/.'}),
    kind: Flags.option({options: ['box', 'delta'] as const, default: 'box', description: 'A whole box (<name>.box) or a delta push (<name>.delta).'})(),
    size: Flags.integer({required: true, min: 0, description: 'Bytes sent.'}),
  }

  async run(): Promise<StepResult<'commit'>> {
    const {flags} = await this.parse(BladeCommit)
    this.checkProtocol(flags.protocol)
    flags satisfies StepFlags<'commit'>
    return commitUpload(bladeContext(), flags.name, flags.size, flags.kind)
  }
}
