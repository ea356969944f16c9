import {attachConsole, requireTerminal} from '../../src/client/vm/pty-console.js'
import {ieVirshArgs} from '../../src/client/vm/plan.js'
import {onBlade} from '../../src/client/vm/session.js'
import {VmCommand, slotArg, vmFlags} from '../../src/client/vm/vm-command.js'

export default class VmConsole extends VmCommand {
  static override summary = "Attach to the serial console of the VM in a slot (leave with Ctrl-])."
  static override description = `Runs "sudo ie-virsh console SLOT" on the blade in a terminal of its own: what you type
goes to the VM's first serial port, what it prints comes back. Ctrl-] ends the session.`
  static override examples = ['<%= config.bin %> vm console 01']
  static override enableJsonFlag = false
  static override args = slotArg
  static override flags = vmFlags

  async run(): Promise<void> {
    const {args, flags} = await this.parse(VmConsole)
    const plan = this.plan(flags)
    const argv = ['sudo', '-n', 'ie-virsh', ...ieVirshArgs(plan, ['console', args.slot])]
    const tty = {stdin: process.stdin, stdout: process.stdout, term: process.env.TERM || 'xterm-256color'}
    requireTerminal(tty)
    const code = await onBlade(plan, this.vmDeps(plan), (_blade, connection) => attachConsole(connection, argv, tty))
    if (code !== 0) this.exit(code)
  }
}
