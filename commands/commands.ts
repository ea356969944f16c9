// `shien commands`: @oclif/plugin-commands' list of every command, with shien's error contract.
import {commands} from '@oclif/plugin-commands'

import {withShienErrors} from '../src/ui/plugin-command.js'

export default withShienErrors(commands.commands)
