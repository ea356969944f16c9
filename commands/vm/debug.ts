import {Flags} from '@oclif/core'

import type {DebugResult} from '../../src/virsh/debug.js'
import {forwardGdb} from '../../src/client/vm/gdb-forward.js'
import {gdbFromLaptop} from '../../src/client/vm/laptop-view.js'
import {ieVirshArgs} from '../../src/client/vm/plan.js'
import {onSlotBlade} from '../../src/client/vm/slot-blade.js'
import {parseSlot} from '../../src/names.js'
import {VmCommand, slotArg, vmFlags} from '../../src/client/vm/vm-command.js'

type VmDebugResult = DebugResult & {fromLaptop: {tunnel: string; gdb: string}; forwardedPort?: number}

export default class VmDebug extends VmCommand {
  static override summary = 'Boot the VM in a slot with a gdb stub, and forward it to this laptop.'
  static override description = `Boots the stopped VM (shien vm destroy stops it) with qemu's gdb stub on a UNIX socket on
the blade that only you can reach, then forwards localhost:--port to it through the SSH
connection until Ctrl-C (the VM keeps running). Attach with gdb -ex 'target remote localhost:1234'.
With --no-forward (the default with --json) it prints the ssh -L command that does the same.
With --stop the CPUs wait at the first instruction (the reset vector) until gdb lets them run.
On a cluster, a slot the blade named does not have is debugged on the blade that has it.`
  static override examples = ['<%= config.bin %> vm debug 01 --stop', '<%= config.bin %> vm debug 01 --port 4444', '<%= config.bin %> vm debug 01 --no-forward --json']
  static override args = slotArg
  static override flags = {
    ...vmFlags,
    stop: Flags.boolean({description: 'Halt the CPUs before the first instruction.'}),
    port: Flags.integer({description: 'Local port gdb connects to (0: any free port).', default: 1234, min: 0, max: 65535}),
    forward: Flags.boolean({description: 'Hold the forward until Ctrl-C (default: yes, except with --json).', allowNo: true}),
  }

  async run(): Promise<VmDebugResult> {
    const {args, flags} = await this.parse(VmDebug)
    const plan = this.plan(flags)
    const deps = this.vmDeps(plan)
    const slot = parseSlot(args.slot)
    const forward = flags.forward ?? !this.jsonEnabled()
    // On a cluster, the blade that has the slot: the stub's socket, and so the forward and the tunnel, are there.
    return onSlotBlade(plan, slot, deps, async (on, blade, connection) => {
      const argv = ['debug', slot, ...(flags.stop ? ['--stop'] : [])]
      const result = await blade.virsh<DebugResult>(ieVirshArgs(on, argv), {signal: deps.signal})
      const fromLaptop = gdbFromLaptop(result.debugSocket, flags.port, on.naming)
      const state = `${result.name} is ${result.state} with a gdb stub${result.stopped ? ', halted at the first instruction' : ''}.`
      if (!forward) {
        if (!this.jsonEnabled()) this.log(`${state}\nOpen a tunnel:  ${fromLaptop.tunnel}\nThen attach:    ${fromLaptop.gdb}`)
        return {...result, fromLaptop}
      }
      const held = await forwardGdb(connection, result.debugSocket, {port: flags.port, signal: this.abort.signal})
      const gdb = gdbFromLaptop(result.debugSocket, held.port, on.naming).gdb
      if (!this.jsonEnabled()) this.log(`${state}\nForwarding localhost:${held.port} to it; attach with: ${gdb}\nCtrl-C ends the forward (the VM keeps running).`)
      await held.closed
      return {...result, fromLaptop: {...fromLaptop, gdb}, forwardedPort: held.port}
    })
  }
}
