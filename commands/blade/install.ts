import {Flags} from '@oclif/core'

import {BladeCommand} from '../../src/blade/blade-command.js'
import type {StepFlags, StepResult} from '../../src/protocol/blade-steps.js'
import {bladeContext} from '../../src/blade/caller.js'
import {checkSlotName} from '../../src/blade/convert.js'
import {installStaged, rollbackSlot, tidySlot} from '../../src/blade/slot-files.js'

export default class BladeInstall extends BladeCommand {
  static override description = 'Put a hardened image in its slot, undo that, or tidy up after a good push.'

  static override flags = {
    slot: Flags.string({required: true, description: 'Slot (01, 02, ...).'}),
    action: Flags.option({options: ['install', 'rollback', 'tidy'] as const, default: 'install', description: 'What to do.'})(),
    installed: Flags.boolean({description: 'For rollback: the new image was already installed.'}),
    name: Flags.string({description: 'For tidy: the uploaded box to remove.'}),
  }

  async run(): Promise<StepResult<'install'>> {
    const {flags} = await this.parse(BladeInstall)
    this.checkProtocol(flags.protocol)
    flags satisfies StepFlags<'install'>
    const ctx = bladeContext()
    const slot = checkSlotName(flags.slot)
    if (flags.action === 'rollback') return rollbackSlot(ctx, slot, flags.installed)
    if (flags.action === 'tidy') return tidySlot(ctx, slot, flags.name).then(() => ({tidy: true}))
    return installStaged(ctx, slot)
  }
}
