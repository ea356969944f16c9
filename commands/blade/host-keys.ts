import {Flags} from '@oclif/core'

import {BladeCommand} from '../../src/blade/blade-command.js'
import {bladeContext} from '../../src/blade/caller.js'
import {slotHostKeys} from '../../src/blade/slot-host-keys.js'
import type {StepFlags, StepResult} from '../../src/protocol/blade-steps.js'

export default class BladeHostKeys extends BladeCommand {
  static override description = "The public host keys harden made for the VM in a slot (run by shien vm ssh)."

  static override flags = {
    slot: Flags.string({required: true, description: 'Slot (01, 02, ...).'}),
  }

  async run(): Promise<StepResult<'host-keys'>> {
    const {flags} = await this.parse(BladeHostKeys)
    this.checkProtocol(flags.protocol)
    flags satisfies StepFlags<'host-keys'>
    return slotHostKeys(bladeContext(), flags.slot)
  }
}
