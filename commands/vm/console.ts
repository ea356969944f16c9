import {attachConsole, requireTerminal} from '../../src/client/vm/pty-console.js'
import {ieVirshArgs} from '../../src/client/vm/plan.js'
import {onSlotBlade, requireListed} from '../../src/client/vm/slot-blade.js'
import {parseSlot} from '../../src/names.js'
import {VmCommand, slotArg, vmFlags} from '../../src/client/vm/vm-command.js'

export default class VmConsole extends VmCommand {
  static override summary = "Attach to the serial console of the VM in a slot (leave with Ctrl-])."
  static override description = `Runs "sudo ie-virsh console SLOT" on the blade in a terminal of its own: what you type
goes to the VM's first serial port, what it prints comes back. Ctrl-] ends the session.
On a cluster, a slot the blade named does not have is looked for on the other blades.`
  static override examples = ['<%= config.bin %> vm console 01']
  static override enableJsonFlag = false
  static override args = slotArg
  static override flags = vmFlags

  async run(): Promise<void> {
    const {args, flags} = await this.parse(VmConsole)
    const plan = this.plan(flags)
    const slot = parseSlot(args.slot)
    const tty = {stdin: process.stdin, stdout: process.stdout, term: process.env.TERM || 'xterm-256color'}
    requireTerminal(tty)
    const deps = this.vmDeps(plan)
    // The list first: the console's own refusal is text on the terminal, not an answer to act on.
    const code = await onSlotBlade(plan, slot, deps, async (on, blade, connection) => {
      await requireListed(on, blade, slot, deps.signal)
      return attachConsole(connection, ['sudo', '-n', 'ie-virsh', ...ieVirshArgs(on, ['console', slot])], tty)
    })
    if (code !== 0) this.exit(code)
  }
}
