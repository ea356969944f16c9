import {Flags} from '@oclif/core'

import {BladeCommand} from '../../src/blade/blade-command.js'
import type {StepFlags, StepResult} from '../../src/protocol/blade-steps.js'
import {bladeContext} from '../../src/blade/caller.js'
import {describeBase} from '../../src/blade/base-manifest.js'

export default class BladeBase extends BladeCommand {
  static override description = 'Whether a published course box is here as a base for a delta push, with its block manifest.'

  static override flags = {
    box: Flags.string({required: true, description: 'Catalog box name, ORG/NAME.'}),
    version: Flags.string({required: true, description: 'The box version the project was made from.'}),
    architecture: Flags.string({description: 'The box\'s architecture (Vagrant\'s name, e.g. arm64): that architecture\'s base. Default: amd64.'}),
  }

  async run(): Promise<StepResult<'base'>> {
    const {flags} = await this.parse(BladeBase)
    this.checkProtocol(flags.protocol)
    flags satisfies StepFlags<'base'>
    return describeBase(bladeContext(), flags.box, flags.version, {signal: this.abort.signal, architecture: flags.architecture})
  }
}
