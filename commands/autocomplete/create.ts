// Hidden: writes the completion scripts into oclif's cache folder (`shien autocomplete` runs it).
import {pluginCommand} from '../../src/ui/plugin-command.js'

export default await pluginCommand('@oclif/plugin-autocomplete', 'commands/autocomplete/create.js')
