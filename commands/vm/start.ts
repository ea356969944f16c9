import {Flags} from '@oclif/core'

import {describeStart, type StartResult} from '../../src/virsh/lifecycle.js'
import {withLaptopSsh} from '../../src/client/vm/laptop-view.js'
import {describeStartPlacement, startPlaced, type StartPlacement} from '../../src/client/vm/start-placement.js'
import {VmCommand, slotArg, vmFlags} from '../../src/client/vm/vm-command.js'

export default class VmStart extends VmCommand {
  static override summary = 'Boot the VM in a slot on the blade.'
  static override description = `On a cluster of blades (docs/cluster.md), a stopped VM starts on the blade that has its slot
when that blade can take it; when it cannot (drained, short of memory, full, not running the VM's
architecture natively), on the blade placement picks, its definition moved there (the image stays
on the shared storage). --blade NAME starts it on that blade.`
  static override examples = ['<%= config.bin %> vm start 01', '<%= config.bin %> vm start 01 --blade blade2']
  static override args = slotArg
  static override flags = {
    ...vmFlags,
    blade: Flags.string({description: 'Blade of the cluster to start the VM on (default: its own, else the one that can take it and runs the fewest VMs).'}),
  }

  async run(): Promise<StartResult & {placement?: StartPlacement}> {
    const {args, flags} = await this.parse(VmStart)
    const plan = this.plan(flags)
    const on = await startPlaced(plan, args.slot, this.vmDeps(plan), {blade: flags.blade})
    const result = withLaptopSsh(on.result, on.plan)
    if (!this.jsonEnabled()) {
      if (on.placement !== undefined && on.placement.by !== 'slot') this.logToStderr(describeStartPlacement(on.placement))
      this.log(describeStart(result))
    }
    return {...result, ...(on.placement === undefined ? {} : {placement: on.placement})}
  }
}
