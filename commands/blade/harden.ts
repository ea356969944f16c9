import {Flags} from '@oclif/core'

import {BladeCommand} from '../../src/blade/blade-command.js'
import type {StepFlags, StepResult} from '../../src/protocol/blade-steps.js'
import {admittedStep} from '../../src/blade/admission.js'
import {bladeContext} from '../../src/blade/caller.js'
import {checkSlotName} from '../../src/blade/convert.js'
import {removingStagedOnFailure} from '../../src/blade/slot-files.js'
import {hardenStaged} from '../../src/blade/harden-staged.js'

export default class BladeHarden extends BladeCommand {
  static override description = 'Remove Vagrant\'s default credentials from a converted image and install the student\'s key, once the blade\'s push queue admits it.'

  static override flags = {
    slot: Flags.string({required: true, description: 'Slot whose converted image to harden.'}),
    'public-key': Flags.string({required: true, description: 'The authorized_keys line to install for vagrant.'}),
    box: Flags.string({description: 'Box the image came from (recorded).'}),
    sha256: Flags.string({description: 'sha256 of the uploaded box (recorded).'}),
  }

  async run(): Promise<StepResult<'harden'>> {
    const {flags} = await this.parse(BladeHarden)
    this.checkProtocol(flags.protocol)
    flags satisfies StepFlags<'harden'>
    const meta = {box: flags.box, boxSha256: flags.sha256}
    const ctx = bladeContext()
    const signal = this.abort.signal
    const slot = checkSlotName(flags.slot)
    return removingStagedOnFailure(ctx, slot, () => admittedStep(ctx, 'harden', slot, signal, () => hardenStaged(ctx, slot, flags['public-key'], meta, signal)))
  }
}
