import {Flags} from '@oclif/core'

import {BladeCommand} from '../../src/blade/blade-command.js'
import type {StepFlags, StepResult} from '../../src/protocol/blade-steps.js'
import {admittedStep} from '../../src/blade/admission.js'
import {bladeContext} from '../../src/blade/caller.js'
import {keptHardened} from '../../src/blade/kept-harden.js'
import {removingStagedOnFailure} from '../../src/blade/slot-files.js'
import {checkSlotName, convertBox} from '../../src/blade/convert.js'

export default class BladeConvert extends BladeCommand {
  static override description = 'Check an uploaded box\'s disk and convert it to qcow2 for a slot (not yet installed), once the blade\'s push queue admits it.'

  static override flags = {
    name: Flags.string({required: true, description: 'Box name in incoming/.'}),
    slot: Flags.string({required: true, description: 'Slot the image is for (01, 02, ...).'}),
    'public-key': Flags.string({description: 'The key harden will install: with sha256, a hardened image of the same upload and key already staged is given back as it is.'}),
    sha256: Flags.string({description: 'sha256 the laptop computed while sending; the box must match it.'}),
  }

  async run(): Promise<StepResult<'convert'>> {
    const {flags} = await this.parse(BladeConvert)
    this.checkProtocol(flags.protocol)
    flags satisfies StepFlags<'convert'>
    const ctx = bladeContext()
    const signal = this.abort.signal
    const slot = checkSlotName(flags.slot)
    const kept = await keptHardened(ctx, slot, {sha256: flags.sha256, publicKey: flags['public-key']})
    if (kept) return kept
    return removingStagedOnFailure(ctx, slot, () => admittedStep(ctx, 'convert', slot, signal, () => convertBox(ctx, flags.name, slot, {sha256: flags.sha256, signal})))
  }
}
