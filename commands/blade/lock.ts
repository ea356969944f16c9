import {Flags} from '@oclif/core'

import {BladeCommand} from '../../src/blade/blade-command.js'
import type {StepFlags, StepResult} from '../../src/protocol/blade-steps.js'
import {bladeContext} from '../../src/blade/caller.js'
import {holdSlotLock} from '../../src/blade/slot-lock.js'
import {emitBladeEvent} from '../../src/protocol/blade-events.js'

export default class BladeLock extends BladeCommand {
  static override description = 'Hold a slot\'s push lock until stdin ends (run by shien push for the whole push); refused with SLOT_BUSY while another push holds it.'

  static override flags = {
    slot: Flags.string({required: true, description: 'Slot being pushed (01, 02, ...).'}),
    host: Flags.string({description: 'The laptop\'s host name, shown to a push that finds the slot busy.'}),
  }

  async run(): Promise<StepResult<'lock'>> {
    const {flags} = await this.parse(BladeLock)
    this.checkProtocol(flags.protocol)
    flags satisfies StepFlags<'lock'>
    const from = process.env.SSH_CLIENT?.split(' ')[0]
    return holdSlotLock(bladeContext(), flags.slot, {
      host: flags.host,
      from,
      signal: this.abort.signal,
      onHeld: (holder) => emitBladeEvent({type: 'locked', holder}),
    })
  }
}
