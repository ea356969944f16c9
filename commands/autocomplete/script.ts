// Hidden: prints the line a shell's startup file sources for completion (`shien autocomplete` shows it).
import {pluginCommand} from '../../src/ui/plugin-command.js'

export default await pluginCommand('@oclif/plugin-autocomplete', 'commands/autocomplete/script.js')
