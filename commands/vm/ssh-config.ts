import {Args} from '@oclif/core'

import {planVmLogin} from '../../src/client/vm/vm-ssh.js'
import {renderSshConfig, type VmLogin} from '../../src/client/vm/vm-login.js'
import {VmCommand, defaultSlot, vmFlags} from '../../src/client/vm/vm-command.js'

export type SshConfigResult = Omit<VmLogin, 'configFile'> & {vm: string; slot: string; text: string}

export default class VmSshConfig extends VmCommand {
  static override summary = "Print a Host block for ~/.ssh/config that reaches the VM in a slot through the blade."
  static override description = `With it in ~/.ssh/config, plain ssh, scp, rsync and editors' remote plugins reach the VM as
shien-<account>-<slot>.<blade>: ProxyJump to the blade, the VM's forwarded SSH port, user vagrant,
your blade key, and HostKeyAlias naming the host keys shien push recorded in known_hosts.
Print it again after a push with --replace: the VM's port may have changed.`
  static override examples = ['<%= config.bin %> vm ssh-config 01 >> ~/.ssh/config', '<%= config.bin %> vm ssh-config 01 --json']
  static override args = {slot: Args.string({description: 'VM slot (default: .shien.json, else 01).'})}
  static override flags = vmFlags

  async run(): Promise<SshConfigResult> {
    const {args, flags} = await this.parse(VmSshConfig)
    const plan = this.plan(flags)
    const {vm, slot, login} = await planVmLogin(plan, args.slot ?? defaultSlot(), this.vmDeps(plan), {running: false})
    const {configFile: _ignored, ...fields} = login
    const text = renderSshConfig(login)
    if (!this.jsonEnabled()) this.log(text.trimEnd())
    return {vm, slot, ...fields, text}
  }
}
