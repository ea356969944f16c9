import {Flags} from '@oclif/core'

import type {DebugResult} from '../../src/virsh/debug.js'
import {gdbFromLaptop} from '../../src/virsh/remote/laptop-view.js'
import {VmCommand, slotArg, vmFlags} from '../../src/virsh/remote/vm-command.js'

export default class VmDebug extends VmCommand {
  static override summary = 'Boot the VM in a slot with a gdb stub, for kernel debugging.'
  static override description = `Takes a port from the blade's debug pool and boots the VM with qemu's gdb stub on it; the
port returns to the pool when the VM stops. With --stop the CPUs wait at the first instruction
(the reset vector) until gdb lets them run. The VM must be stopped first (shien vm destroy).`
  static override examples = ['<%= config.bin %> vm debug 01 --stop']
  static override args = slotArg
  static override flags = {...vmFlags, stop: Flags.boolean({description: 'Halt the CPUs before the first instruction.'})}

  async run(): Promise<DebugResult & {fromLaptop: {tunnel?: string; gdb: string}}> {
    const {args, flags} = await this.parse(VmDebug)
    const plan = this.plan(flags)
    const result = await this.ieVirsh<DebugResult>(plan, ['debug', args.slot, ...(flags.stop ? ['--stop'] : [])])
    const fromLaptop = gdbFromLaptop(result.debugHost, result.debugPort, plan.target.alias)
    if (!this.jsonEnabled()) {
      this.log(`${result.name} is ${result.state} with a gdb stub on port ${result.debugPort} of ${plan.target.alias}${result.stopped ? ', halted at the first instruction' : ''}.`)
      if (fromLaptop.tunnel) this.log(`Open a tunnel:  ${fromLaptop.tunnel}`)
      this.log(`Then attach:    ${fromLaptop.gdb}`)
      this.log(`On the blade:   ${result.gdb}`)
    }
    return {...result, fromLaptop}
  }
}
