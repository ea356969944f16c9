import {Args, Flags} from '@oclif/core'

import {describeShutdown, type ShutdownResult} from '../../src/virsh/lifecycle.js'
import {VmCommand, defaultSlot, vmFlags} from '../../src/client/vm/vm-command.js'

export default class VmStop extends VmCommand {
  static override summary = 'Shut the VM in a slot down gracefully (ACPI), powering it off only if it does not stop in time.'
  static override description = `Presses the VM's ACPI power button (ie-virsh shutdown) and waits for the guest to power
itself off. A VM still running after --timeout seconds is powered off at once (as vm destroy
does); the output says which of the two happened.`
  static override examples = ['<%= config.bin %> vm stop 01', '<%= config.bin %> vm stop 01 --timeout 120']
  static override args = {slot: Args.string({description: 'VM slot (default: .shien.json, else 01).'})}
  static override flags = {
    ...vmFlags,
    timeout: Flags.integer({description: 'Seconds the guest has to shut down before it is powered off.', default: 60, min: 1, max: 600}),
  }

  async run(): Promise<ShutdownResult> {
    const {args, flags} = await this.parse(VmStop)
    const slot = args.slot ?? defaultSlot()
    const {result} = await this.ieVirshOnSlot<ShutdownResult>(this.plan(flags), slot, ['shutdown', slot, '--timeout', String(flags.timeout)])
    if (!this.jsonEnabled()) this.log(describeShutdown(result))
    return result
  }
}
