// `shien help [COMMAND]`: @oclif/plugin-help's command, with shien's error contract.
import {commands} from '@oclif/plugin-help'

import {withShienErrors} from '../src/ui/plugin-command.js'

export default withShienErrors(commands.help)
