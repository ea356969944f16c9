import {configPath} from '../../src/client/user-config.js'
import {ShienCommand} from '../../src/ui/base-command.js'

export default class ConfigPath extends ShienCommand {
  static override summary = 'Print the path of your user config.'

  static override description = `$XDG_CONFIG_HOME/shien/config.json, or ~/.config/shien/config.json when XDG_CONFIG_HOME is not set (on macOS too). The file may not exist yet: shien config set makes it.`

  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json']

  async run(): Promise<{path: string}> {
    await this.parse(ConfigPath)
    const result = configPath({cwd: process.cwd(), env: process.env})
    if (!this.jsonEnabled()) this.log(result.path)
    return result
  }
}
