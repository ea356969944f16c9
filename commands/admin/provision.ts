import {Flags} from '@oclif/core'

import {runProvision} from '../../src/admin/provision-command.js'
import {describeProvision, type ProvisionReport} from '../../src/admin/provision.js'
import {DEFAULT_CONFIG_PATH} from '../../src/config/blade-config.js'
import {ShienCommand} from '../../src/ui/base-command.js'

export default class AdminProvision extends ShienCommand {
  static override summary = "Create or repair every account's folders on the blades' storage."
  static override description = `For each account of the groups (from LDAP, or the system's groups without LDAP), makes
<storageRoot>/users/<account>/ with incoming/ and images/: owned by the account, mode 0700, readable
by the admin group and passable by libvirt's qemu user (ACLs). Safe to run again: it reports what it
created, what it fixed and what it left, and never follows a symlink a student put in place.`
  static override examples = ['sudo <%= config.bin %> admin provision --group students', 'sudo <%= config.bin %> admin provision --json']
  static override flags = {
    group: Flags.string({char: 'g', multiple: true, description: 'Group whose members to provision (default: the role groups in the LDAP settings).'}),
    config: Flags.string({description: 'The blade configuration.', default: DEFAULT_CONFIG_PATH, hidden: true}),
  }

  async run(): Promise<ProvisionReport> {
    const {flags} = await this.parse(AdminProvision)
    const report = await runProvision({configPath: flags.config, groups: flags.group ?? [], uid: process.getuid?.() ?? -1, signal: this.abort.signal})
    if (!this.jsonEnabled()) this.log(describeProvision(report))
    if (report.problems.length > 0) process.exitCode = 6
    return report
  }
}
