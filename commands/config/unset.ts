import {Args} from '@oclif/core'

import {configUnset, type ConfigEditResult} from '../../src/client/user-config.js'
import {ShienCommand} from '../../src/ui/base-command.js'

export default class ConfigUnset extends ShienCommand {
  static override summary = 'Remove a setting from your user config.'

  static override description = `Removes KEY from your user config (shien config path); a key that is not a setting can be removed too, which is how a mistyped one is fixed. Nothing is written when the key is not there.`

  static override examples = [
    {description: 'Forget the default blade:', command: '<%= config.bin %> <%= command.id %> host'},
    {description: 'Remove a mistyped key the other commands refuse:', command: '<%= config.bin %> <%= command.id %> hots --json'},
  ]

  static override args = {key: Args.string({required: true, description: 'The setting, e.g. host.'})}

  async run(): Promise<ConfigEditResult & {removed: boolean}> {
    const {args} = await this.parse(ConfigUnset)
    const result = await configUnset({cwd: process.cwd(), env: process.env}, args.key)
    if (!this.jsonEnabled()) {
      this.log(result.removed ? `Removed ${result.key} from ${result.file}.` : `${result.file} does not set ${result.key}.`)
      if (result.overriddenBy) this.log(`Here, ${result.overriddenBy} still sets ${result.key}.`)
    }
    return result
  }
}
