import {Args} from '@oclif/core'

import {configSet, type ConfigEditResult} from '../../src/client/user-config.js'
import {ShienCommand} from '../../src/ui/base-command.js'
import {settingsHelp} from '../../src/client/config-help.js'

export default class ConfigSet extends ShienCommand {
  static override summary = 'Set a setting in your user config, for every project.'

  static override description = `Writes KEY to your user config (shien config path), after checking the whole file against the settings below: a key that is not one of them, or a value of the wrong type, changes nothing. The file is replaced in one step (a temporary file renamed over it) and keeps its mode. A project's .shien.json still wins over it for that project.

${settingsHelp()}`

  static override examples = [
    {description: 'Push to blade1 from every project:', command: '<%= config.bin %> <%= command.id %> host blade1'},
    {description: 'The same, through a jump host alias from ~/.ssh/config:', command: '<%= config.bin %> <%= command.id %> host e195701@blade1'},
    {description: 'Make delta pushes against the course box:', command: '<%= config.bin %> <%= command.id %> base os101/debian12@2026.1.0 --json'},
  ]

  static override args = {
    key: Args.string({required: true, description: 'The setting, e.g. host.'}),
    value: Args.string({required: true, description: 'Its new value.'}),
  }

  async run(): Promise<ConfigEditResult> {
    const {args} = await this.parse(ConfigSet)
    const result = await configSet({cwd: process.cwd(), env: process.env}, args.key, args.value)
    if (!this.jsonEnabled()) {
      this.log(`Set ${result.key} in ${result.file}.`)
      if (result.overriddenBy) this.log(`Here, ${result.overriddenBy} sets ${result.key} and wins.`)
    }
    return result
  }
}
