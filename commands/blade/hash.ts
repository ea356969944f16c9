import {Flags} from '@oclif/core'

import {BladeCommand} from '../../src/blade/blade-command.js'
import type {StepFlags, StepResult} from '../../src/protocol/blade-steps.js'
import {bladeContext} from '../../src/blade/caller.js'
import {hashPart} from '../../src/blade/incoming.js'

export default class BladeHash extends BladeCommand {
  static override description = 'The resume check: hashes of an upload in progress, its prefix whole and its tail block by block.'

  static override flags = {
    name: Flags.string({required: true, description: 'Upload name in incoming/.'}),
    kind: Flags.option({options: ['box', 'delta'] as const, default: 'box', description: 'A whole box (<name>.box) or a delta push (<name>.delta).'})(),
    prefix: Flags.integer({min: 0, required: true, description: 'Bytes hashed as one.'}),
    'block-size': Flags.integer({min: 1, required: true, description: 'Size of each block hashed after the prefix.'}),
    complete: Flags.boolean({description: 'Hash the complete upload already in place (<name>.box), not the .part.'}),
  }

  async run(): Promise<StepResult<'hash'>> {
    const {flags} = await this.parse(BladeHash)
    this.checkProtocol(flags.protocol)
    flags satisfies StepFlags<'hash'>
    return hashPart(bladeContext(), flags.name, flags.prefix, flags['block-size'], flags.kind, flags.complete)
  }
}
