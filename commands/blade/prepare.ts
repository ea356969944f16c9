import {Flags} from '@oclif/core'

import {BladeCommand} from '../../src/blade/blade-command.js'
import type {StepFlags, StepResult} from '../../src/protocol/blade-steps.js'
import {bladeContext} from '../../src/blade/caller.js'
import {prepareUpload} from '../../src/blade/incoming.js'

export default class BladePrepare extends BladeCommand {
  static override description = 'Make room for an upload in incoming/ and report what a resume can use.'

  static override flags = {
    name: Flags.string({required: true, description: 'Upload name in incoming/.'}),
    kind: Flags.option({options: ['box', 'delta'] as const, default: 'box', description: 'A whole box (<name>.box) or a delta push (<name>.delta).'})(),
    size: Flags.integer({required: true, min: 0, description: 'Bytes that will be uploaded.'}),
    slot: Flags.string({description: 'The slot the upload is for: a good push of that slot removes it, whatever its name.'}),
  }

  async run(): Promise<StepResult<'prepare'>> {
    const {flags} = await this.parse(BladePrepare)
    this.checkProtocol(flags.protocol)
    flags satisfies StepFlags<'prepare'>
    return prepareUpload(bladeContext(), flags.name, flags.size, flags.kind, flags.slot)
  }
}
