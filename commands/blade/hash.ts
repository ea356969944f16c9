import {Flags} from '@oclif/core'

import {BladeCommand} from '../../src/blade/blade-command.js'
import {bladeContext} from '../../src/blade/caller.js'
import {hashPrefix} from '../../src/blade/incoming.js'

export default class BladeHash extends BladeCommand {
  static override description = 'sha256 of the first bytes of an upload in progress (the resume check).'

  static override flags = {
    name: Flags.string({required: true, description: 'Box name in incoming/.'}),
    length: Flags.integer({min: 0, description: 'Bytes to hash (default: all).'}),
  }

  async run() {
    const {flags} = await this.parse(BladeHash)
    this.checkProtocol(flags.protocol)
    return hashPrefix(bladeContext(), flags.name, flags.length)
  }
}
