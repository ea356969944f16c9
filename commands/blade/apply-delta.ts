import {Flags} from '@oclif/core'

import {BladeCommand} from '../../src/blade/blade-command.js'
import type {StepFlags, StepResult} from '../../src/protocol/blade-steps.js'
import {admittedStep} from '../../src/blade/admission.js'
import {bladeContext} from '../../src/blade/caller.js'
import {checkSlotName} from '../../src/blade/convert.js'
import {keptHardened} from '../../src/blade/kept-harden.js'
import {removingStagedOnFailure} from '../../src/blade/slot-files.js'
import {applyDelta} from '../../src/blade/apply-delta.js'

export default class BladeApplyDelta extends BladeCommand {
  static override description = 'Make a slot\'s image (not yet installed) from an uploaded delta: a qcow2 overlay of the published base, once the blade\'s push queue admits it.'

  static override flags = {
    name: Flags.string({required: true, description: 'Upload name in incoming/ (<name>.delta).'}),
    slot: Flags.string({required: true, description: 'Slot the image is for (01, 02, ...).'}),
    box: Flags.string({required: true, description: 'Catalog box the delta was made against, ORG/NAME.'}),
    version: Flags.string({required: true, description: 'Version of that box.'}),
    'public-key': Flags.string({description: 'The key harden will install: with sha256, a hardened image of the same upload and key already staged is given back as it is.'}),
    sha256: Flags.string({description: 'sha256 the laptop computed while sending; the delta must match it.'}),
    architecture: Flags.string({description: 'The box\'s architecture (Vagrant\'s name): the delta is applied on that architecture\'s base. Default: amd64.'}),
    'architecture-source': Flags.string({description: 'Where the box declares its architecture; harden checks the disk against it.'}),
    firmware: Flags.option({options: ['bios', 'efi'] as const, description: 'The firmware the box declares (default: the base\'s).'})(),
  }

  async run(): Promise<StepResult<'apply-delta'>> {
    const {flags} = await this.parse(BladeApplyDelta)
    this.checkProtocol(flags.protocol)
    flags satisfies StepFlags<'apply-delta'>
    const {name, slot, box, version, sha256, architecture, firmware} = flags
    const architectureSource = flags['architecture-source']
    const ctx = bladeContext()
    const signal = this.abort.signal
    checkSlotName(slot)
    const kept = await keptHardened(ctx, slot, {sha256, publicKey: flags['public-key']})
    if (kept) return kept
    return removingStagedOnFailure(ctx, slot, () => admittedStep(ctx, 'apply-delta', slot, signal, () => applyDelta(ctx, {name, slot, box, version, sha256, architecture, architectureSource, firmware}, {signal})))
  }
}
