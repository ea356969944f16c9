import {Args} from '@oclif/core'

import {ShienError} from '../../src/errors.js'
import {planVmLogin, runVmSsh, runVmSshCommand, type VmSshResult} from '../../src/client/vm/vm-ssh.js'
import {VmCommand, defaultSlot, vmFlags} from '../../src/client/vm/vm-command.js'

export default class VmSsh extends VmCommand {
  static override summary = 'Log in to the VM in a slot over SSH, through the blade (like vagrant ssh).'
  static override description = `Runs OpenSSH's ssh with the blade as ProxyJump (named as shien names it, so the same
host, user, port and keys) to the VM's forwarded SSH port, as vagrant, checking the VM's host keys
that shien push recorded in known_hosts (StrictHostKeyChecking yes: nothing is asked, and a key
that does not match is refused). When known_hosts has no keys for the VM (pushed from another
laptop), they are taken from the blade's record of the push first. Everything after -- is the
command to run instead of a shell, as with ssh; shien exits with ssh's exit code.
With --json a COMMAND is required: its output is returned in the JSON object.`
  static override usage = ['<%= command.id %> [SLOT] [FLAGS] [-- COMMAND...]']
  static override examples = ['<%= config.bin %> vm ssh', '<%= config.bin %> vm ssh 02', '<%= config.bin %> vm ssh 01 -- uname -a']
  static override args = {slot: Args.string({description: 'VM slot (default: .shien.json, else 01).'})}
  static override flags = vmFlags

  async run(): Promise<VmSshResult | undefined> {
    // Words after -- are the remote command, never shien's flags or the slot.
    const end = this.argv.indexOf('--')
    const command = end === -1 ? [] : this.argv.slice(end + 1)
    const {args, flags} = await this.parse(VmSsh, end === -1 ? this.argv : this.argv.slice(0, end))
    if (this.jsonEnabled() && command.length === 0) {
      throw new ShienError('--json needs a command after --: a login shell talks to your terminal.', {
        code: 'USAGE', exit: 'usage', suggestions: ['shien vm ssh 01 --json -- id', 'Or leave out --json to log in.'],
      })
    }
    const plan = this.plan(flags)
    const target = await planVmLogin(plan, args.slot ?? defaultSlot(), this.vmDeps(plan), {running: true})
    if (this.jsonEnabled()) return runVmSshCommand(target, command)
    const code = await runVmSsh(target.login, command)
    if (code !== 0) this.exit(code)
    return undefined
  }
}
