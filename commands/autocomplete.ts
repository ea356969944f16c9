// `shien autocomplete [bash|zsh]`: @oclif/plugin-autocomplete's setup instructions, with shien's error contract.
import {pluginCommand} from '../src/ui/plugin-command.js'

export default await pluginCommand('@oclif/plugin-autocomplete', 'commands/autocomplete/index.js')
