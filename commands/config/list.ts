import {configList, type ConfigListResult} from '../../src/client/user-config.js'
import {ShienCommand} from '../../src/ui/base-command.js'
import {formatConfigList} from '../../src/client/config-help.js'

export default class ConfigList extends ShienCommand {
  static override summary = 'List every setting in effect here and the file each came from.'

  static override description = `Shows each setting with its value and where it came from: the .shien.json found in this folder or the nearest parent (which wins), your user config (shien config path), or SHIEN_HOST for host. Unset settings are listed too. Flags (--host, --slot, ...) win over all of these.`

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    {description: 'Which .shien.json and user config were read, as JSON:', command: '<%= config.bin %> <%= command.id %> --json'},
  ]

  async run(): Promise<ConfigListResult> {
    await this.parse(ConfigList)
    const result = configList({cwd: process.cwd(), env: process.env})
    if (!this.jsonEnabled()) this.log(formatConfigList(result))
    return result
  }
}
