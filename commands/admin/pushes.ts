import {Flags} from '@oclif/core'

import {describePushes, listPushes, type PushesReport} from '../../src/admin/pushes.js'
import {DEFAULT_CONFIG_PATH} from '../../src/config/blade-config.js'
import {ShienCommand} from '../../src/ui/base-command.js'

export default class AdminPushes extends ShienCommand {
  static override summary = "Show the blade's push queue: the heavy steps running and waiting."
  static override description = `Lists the convert, apply-delta and harden steps of pushes that run on this blade now or wait
for their turn (push.concurrent in /etc/shien/config.json), with the account, slot, step and how
long each has run or waited. Places whose process is gone are dropped as it reads.`
  static override examples = ['sudo <%= config.bin %> admin pushes', 'sudo <%= config.bin %> admin pushes --json']
  static override flags = {
    config: Flags.string({description: 'The blade configuration.', default: DEFAULT_CONFIG_PATH, hidden: true}),
  }

  async run(): Promise<PushesReport> {
    const {flags} = await this.parse(AdminPushes)
    const report = await listPushes({configPath: flags.config, uid: process.getuid?.() ?? -1, signal: this.abort.signal})
    if (!this.jsonEnabled()) this.log(describePushes(report))
    return report
  }
}
