import {Args} from '@oclif/core'

import {configGet, type EffectiveSetting} from '../../src/client/user-config.js'
import {ShienCommand} from '../../src/ui/base-command.js'
import {settingsHelp} from '../../src/client/config-help.js'

export default class ConfigGet extends ShienCommand {
  static override summary = 'Print one setting in effect here, and with --json the file it came from.'

  static override description = `The value .shien.json (this folder's or a parent's) or your user config gives KEY, the project's winning; nothing is printed when neither sets it. SHIEN_HOST wins for host.

${settingsHelp()}`

  static override examples = [
    {description: 'The blade shien push would use here:', command: '<%= config.bin %> <%= command.id %> host'},
    {description: 'The value and the file it came from:', command: '<%= config.bin %> <%= command.id %> slot --json'},
  ]

  static override args = {key: Args.string({required: true, description: 'The setting, e.g. host.'})}

  async run(): Promise<EffectiveSetting & {userFile: string; projectFile?: string}> {
    const {args} = await this.parse(ConfigGet)
    const result = configGet({cwd: process.cwd(), env: process.env}, args.key)
    if (!this.jsonEnabled() && result.value !== undefined) this.log(String(result.value))
    return result
  }
}
