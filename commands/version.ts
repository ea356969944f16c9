// `shien version [--json]`: @oclif/plugin-version's command, with shien's error contract.
import {pluginCommand} from '../src/ui/plugin-command.js'

export default await pluginCommand('@oclif/plugin-version', 'commands/version.js')
